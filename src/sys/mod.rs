//! What the library needs from the system: atomic file writes (`atomic`), device selection
//! (`device`), memory probes (`memory`), the C++ shim's CUDA graphs (`graph`) and its c10d
//! collectives for data parallelism (`dist`).
pub mod atomic;
pub mod device;
pub mod dist;
pub mod graph;
pub mod memory;
