//! What is made of trained runs: the grid of Figure 6 and Table 6 (`compare`), the tables of
//! the paper (`report`: the runs and their tables; `report_writer`: `resnet report`'s files), Figure 7 (`responses`), Table 1 / Table 6 counts (`info`), the
//! throughput of the training step (`throughput`) and of its data-parallel form (`scaling`).
pub mod compare;
pub(crate) mod imagenet_runs;
pub mod info;
pub mod report;
pub mod report_writer;
pub mod reproduce;
pub mod responses;
pub mod scaling;
pub mod throughput;
