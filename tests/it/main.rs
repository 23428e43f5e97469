//! The integration tests of `resnet`: one test binary (cargo's `tests/testsuite` shape), one
//! module per subject, sharing `support` (the tiny recipe, the binary runner, the one-line error
//! contract, visible skips). Run one subject with `scripts/test --test it SUBJECT::`, an ignored
//! one on purpose with `scripts/test --test it SUBJECT:: -- --ignored`.
//!
//! Tests that do tensor work in this process (training, evaluation) share libtorch's global
//! state (intra-op thread count, seeds) with every other such test of the binary: each sets what
//! it depends on, as `run.threads` does through `sys::device::select`.
mod support;

mod analyses;
mod bench_cli;
mod checkpoint_trust;
mod class_folders;
mod compare;
mod compare_signals;
mod configs;
mod cuda_graph;
mod curves_resume;
mod data_cuda;
mod data_fetch;
mod data_prepare;
mod data_real;
mod detection_data;
mod detection_eval;
mod device_scripts;
mod dist;
mod dist_train;
mod folder_scale;
mod hostile;
mod imagenet_transform;
mod input_bounds;
mod launcher;
mod proof_cifar10_png;
mod reference;
mod reference_imagenet;
mod report_records;
mod reproduce;
mod run_folder;
mod run_folder_records;
mod script_headers;
mod signals_pipes;
mod torchvision;
mod train;
mod untrusted_weights;
mod vision_ops;
