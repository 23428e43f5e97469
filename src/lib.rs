//! `resnet`: the experiments of *Deep Residual Learning for Image Recognition* (He, Zhang, Ren,
//! Sun, 2015) on libtorch through `tch`.
//!
//! Library modules hold all logic; `main.rs` only parses arguments and dispatches.
pub mod arch;
pub mod atomic;
pub mod bench;
pub mod budget;
pub mod compare;
pub mod config;
pub mod data;
pub mod device;
pub mod dist;
pub mod eval;
pub mod graph;
pub mod info;
pub mod model;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod records;
pub mod report;
pub mod responses;
pub mod rundir;
pub mod schedule;
pub mod table;
pub mod train;
