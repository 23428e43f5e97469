//! How inputs reach the networks of §3.3 / §4.2, in training and in every testing protocol of §3.4
//! alike: the memory format of the batch (channels-last for `run.memory_format = "nhwc"`) and
//! bfloat16 autocast (`run.precision = "bf16"`).
use crate::config::{Config, MemoryFormat, Precision};
use tch::Tensor;

/// How inputs reach the network: memory format and autocast (shared with training).
#[derive(Debug, Clone, Copy)]
pub struct ForwardMode {
    pub channels_last: bool,
    pub bf16_autocast: bool,
}

impl ForwardMode {
    pub fn of(cfg: &Config) -> ForwardMode {
        ForwardMode {
            channels_last: cfg.run.memory_format == MemoryFormat::Nhwc,
            bf16_autocast: cfg.run.precision == Precision::Bf16,
        }
    }

    /// Puts a [N, C, H, W] batch in the configured memory format: channels-last strides for
    /// "nhwc" (tch has no memory-format API: permute to NHWC, make that contiguous, permute back
    /// to an NCHW-shaped view; free when the loader already produced NHWC memory, as the §4.2
    /// crop does), plain contiguous for "nchw" (otherwise an NHWC-strided batch would silently
    /// switch every convolution to channels-last with NCHW weights, converted at each call).
    pub fn prepare(&self, x: Tensor) -> Tensor {
        if x.dim() != 4 {
            x
        } else if self.channels_last {
            x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
        } else {
            x.contiguous()
        }
    }

    /// Runs `f` under bfloat16 CUDA autocast when `run.precision = "bf16"`.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.bf16_autocast {
            tch::autocast(true, f)
        } else {
            f()
        }
    }
}
