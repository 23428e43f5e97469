//! What the library needs from the system: atomic file writes (`atomic`), console output that
//! never fails (`console`), device selection (`device`), memory probes (`memory`), the C++
//! shim's CUDA graphs (`graph`) and its c10d collectives for data parallelism (`dist`), and `--nproc`'s local launcher (`launch`).
pub mod atomic;
pub mod console;
pub mod device;
pub mod dist;
pub mod graph;
pub mod launch;
pub mod lock;
pub mod memory;
