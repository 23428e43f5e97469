//! What the library needs from the system: atomic file writes (`atomic`), device selection
//! (`device`), memory probes (`memory`) and the C++ shim's CUDA graphs (`graph`).
pub mod atomic;
pub mod device;
pub mod graph;
pub mod memory;
