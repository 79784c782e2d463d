//! Persistence: safetensors model files and training checkpoints.
