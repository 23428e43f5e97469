//! `resnet`: the experiments of *Deep Residual Learning for Image Recognition* (He, Zhang, Ren,
//! Sun, 2015) on libtorch through `tch`.
//!
//! Library modules hold all logic; `main.rs` only parses arguments and dispatches. The folders
//! are the pipeline's layers, each importing only the ones below it:
//!
//! - [`analysis`]: what is made of finished runs (Figure 6's grid, the tables, Figure 7, counts);
//! - [`train`]: one run (§3.4, §4.2): trainer, CUDA-graph step, session, optimizer, schedule;
//! - [`eval`]: the testing protocols of §3.4 on a network and `resnet eval`;
//! - [`run`]: the run folder, its checkpoint and records, the memory estimate;
//! - [`net`] and [`data`]: the networks of Table 1 / §4.2 and the datasets with their augmentation;
//! - [`present`]: tables and plots; [`sys`]: atomic files, devices, memory, the C++ shim;
//! - [`config`] (one run's recipe) at the bottom.
pub mod analysis;
pub mod config;
pub mod data;
pub mod eval;
pub mod net;
pub mod present;
pub mod run;
pub mod sys;
pub mod train;
