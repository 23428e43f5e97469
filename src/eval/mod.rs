//! Test-set evaluation (§3.4, §4.2, Tables 2-4): the testing protocols ([`protocols`]) and the
//! evaluation of a checkpoint or weights file that `resnet eval --checkpoint` runs ([`measure`]);
//! [`detection`] scores object detections (Tables 7 and 8: VOC and COCO AP) for `resnet eval
//! --detections`.
pub mod detection;
pub mod measure;
pub mod protocols;

pub use measure::{measure, open, open_weights, record, run, EvalOptions, EvalOutcome, Opened};
pub use protocols::{
    evaluate, result_of_sums, single_crop_sums, Measurement, Protocol, CONFIG_SIDES, MAX_SCALE,
    PAPER_SCALES,
};
