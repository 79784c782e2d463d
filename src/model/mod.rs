//! Models: parameter sets, the SASRec/ReaRec encoder and its losses.
