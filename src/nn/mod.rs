//! Layers: each file holds a parameter view, the forward cache, `forward`
//! and the hand-derived `backward` side by side.
