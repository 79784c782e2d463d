//! STUB: counter-based deterministic RNG, to be written.
