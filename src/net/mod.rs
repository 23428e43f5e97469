//! The networks of §3.3 / Table 1 (ImageNet) and §4.2 (CIFAR-10): the architecture as data
//! (`arch`), the tch module built from it (`model`) and how inputs reach it (`forward`); the
//! detector's building blocks of the paper's appendix (`detection`).
pub mod arch;
pub mod detection;
pub mod forward;
pub mod model;
