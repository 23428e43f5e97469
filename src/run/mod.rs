//! The run folder of a training run: its files and lock (`dir`), the checkpoint (`checkpoint`),
//! the run state it carries (`state`), the records (`records`), the memory estimate (`budget`) and
//! torchvision's state-dict format (`torchvision`).
pub mod budget;
pub mod checkpoint;
pub mod dir;
pub mod records;
pub mod state;
pub mod torchvision;
