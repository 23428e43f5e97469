//! What the library needs from the system: atomic file writes (`atomic`), console output that
//! never fails (`console`), device selection (`device`), memory probes (`memory`) and the C++
//! shim's CUDA graphs (`graph`).
pub mod atomic;
pub mod console;
pub mod device;
pub mod graph;
pub mod memory;
