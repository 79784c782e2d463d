//! Interaction data: readers, the `Interactions` store, filters, splits,
//! batches and the built-in synthetic dataset.
