//! The building blocks of the Faster R-CNN detector of the paper's appendix "Object Detection
//! Baselines" (Tables 7–8): the RPN's anchors, box regression coding, RoIAlign and NMS, each
//! built from tch ops and checked against py-faster-rcnn's values or torchvision's own outputs.
pub mod anchors;
pub mod box_coding;
pub mod nms;
pub mod roi_align;
