//! The run folder of a training run: its files and lock (`dir`), the checkpoint (`checkpoint`),
//! the run state it carries (`state`), the records (`records`) and the memory estimate (`budget`).
pub mod budget;
pub mod checkpoint;
pub mod dir;
pub mod records;
pub mod state;
