//! STUB: top-K selection, to be written.
