//! Architectures of Table 1 (ImageNet) and §4.2 (CIFAR-10) as pure data, with parameter and
//! multiply-add counts (Table 1's FLOPs column, Table 6's #params column).
//!
//! [`Plan::new`] turns a [`ModelConfig`] into stages of blocks; `model.rs` builds the network from
//! the same plan, so the counts here describe exactly what is trained (a test checks the
//! parameter count against the built `VarStore`).
//!
//! What is counted: parameters are every trainable tensor (conv weights, BN weight and bias, FC
//! weight and bias; BN running statistics are buffers, not parameters). Multiply-adds are those of
//! every convolution (including 1×1 projection shortcuts) and the final FC layer, for one image;
//! BN, ReLU, pooling and the shortcut additions are not counted, as in the paper's Table 1 and in
//! torchvision's published GFLOPS.
use crate::config::{Family, ModelConfig, NetKind, Shortcut};

/// How a block's input reaches its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortcutPlan {
    /// Plain net: no shortcut at all.
    None,
    /// Identity (same shape).
    Identity,
    /// Option A where dimensions grow: subsample by `stride`, zero-pad channels `before`/`after`.
    ZeroPad {
        stride: usize,
        before: usize,
        after: usize,
    },
    /// Options B/C: 1×1 conv with `stride` + BN (`downsample.0`, `downsample.1`).
    Projection { stride: usize },
}

/// One residual (or plain) block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPlan {
    pub in_channels: usize,
    /// Width of the 3×3 convs (bottleneck: of the inner 1×1/3×3 convs).
    pub width: usize,
    pub out_channels: usize,
    pub stride: usize,
    pub bottleneck: bool,
    /// Bottleneck only: stride on the first 1×1 conv (paper) rather than the 3×3 (torchvision).
    pub stride_in_1x1: bool,
    pub shortcut: ShortcutPlan,
}

/// A convolution or FC layer with its shapes, for counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerCount {
    pub name: String,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Output spatial side (1 for FC).
    pub out_side: usize,
    /// Whether this layer counts towards the paper's depth (main-path convs and FC do;
    /// projection shortcuts do not).
    pub weighted: bool,
}

impl LayerCount {
    pub fn params(&self) -> u64 {
        let w = (self.in_channels * self.out_channels * self.kernel * self.kernel) as u64;
        if self.kernel == 0 {
            0
        } else if self.out_side == 1 && self.name == "fc" {
            w + self.out_channels as u64
        } else {
            w
        }
    }

    pub fn mult_adds(&self) -> u64 {
        (self.in_channels * self.out_channels * self.kernel * self.kernel) as u64
            * (self.out_side * self.out_side) as u64
    }
}

/// The whole network as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub family: Family,
    pub kind: NetKind,
    pub stem_channels: usize,
    /// 3 for CIFAR (stride 1), 7 for ImageNet (stride 2, then 3×3/2 max pool).
    pub stem_kernel: usize,
    pub stem_stride: usize,
    pub max_pool: bool,
    /// `stages[i]` is torchvision's `layer{i+1}`.
    pub stages: Vec<Vec<BlockPlan>>,
    pub features: usize,
    pub classes: usize,
}

/// Blocks per stage and whether they are bottlenecks, for Table 1's depths.
pub fn imagenet_blocks(depth: usize) -> Option<(&'static [usize], bool)> {
    Some(match depth {
        18 => (&[2, 2, 2, 2], false),
        34 => (&[3, 4, 6, 3], false),
        50 => (&[3, 4, 6, 3], true),
        101 => (&[3, 4, 23, 3], true),
        152 => (&[3, 8, 36, 3], true),
        _ => return None,
    })
}

fn shortcut_for(
    kind: NetKind,
    option: Shortcut,
    cin: usize,
    cout: usize,
    stride: usize,
) -> ShortcutPlan {
    if kind == NetKind::Plain {
        return ShortcutPlan::None;
    }
    let changes = cin != cout || stride != 1;
    match option {
        Shortcut::C => ShortcutPlan::Projection { stride },
        Shortcut::B if changes => ShortcutPlan::Projection { stride },
        Shortcut::A if changes => {
            // Split the extra zero channels evenly before and after, as the widely used CIFAR
            // reproductions do (F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes//4, planes//4))).
            let extra = cout
                .checked_sub(cin)
                .expect("option A never shrinks channels");
            ShortcutPlan::ZeroPad {
                stride,
                before: extra / 2,
                after: extra - extra / 2,
            }
        }
        _ => ShortcutPlan::Identity,
    }
}

impl Plan {
    /// The plan of a validated config (panics on a depth that `ModelConfig::validate` refuses).
    pub fn new(cfg: &ModelConfig) -> Plan {
        let option = cfg.shortcut();
        let (stem_channels, widths, counts, bottleneck): (usize, Vec<usize>, Vec<usize>, bool) =
            match cfg.family {
                Family::Cifar => {
                    let n = (cfg.depth - 2) / 6;
                    (16, vec![16, 32, 64], vec![n; 3], false)
                }
                Family::Imagenet => {
                    let (counts, bottleneck) =
                        imagenet_blocks(cfg.depth).expect("validated ImageNet depth");
                    (64, vec![64, 128, 256, 512], counts.to_vec(), bottleneck)
                }
            };
        let expansion = if bottleneck { 4 } else { 1 };
        let mut cin = stem_channels;
        let mut stages = Vec::new();
        for (i, (&width, &count)) in widths.iter().zip(&counts).enumerate() {
            let mut blocks = Vec::new();
            for b in 0..count {
                let stride = if i > 0 && b == 0 { 2 } else { 1 };
                let cout = width * expansion;
                blocks.push(BlockPlan {
                    in_channels: cin,
                    width,
                    out_channels: cout,
                    stride,
                    bottleneck,
                    stride_in_1x1: cfg.stride_in_1x1,
                    shortcut: shortcut_for(cfg.kind, option, cin, cout, stride),
                });
                cin = cout;
            }
            stages.push(blocks);
        }
        let (stem_kernel, stem_stride, max_pool) = match cfg.family {
            Family::Cifar => (3, 1, false),
            Family::Imagenet => (7, 2, true),
        };
        Plan {
            family: cfg.family,
            kind: cfg.kind,
            stem_channels,
            stem_kernel,
            stem_stride,
            max_pool,
            stages,
            features: cin,
            classes: cfg.classes(),
        }
    }

    /// Every conv and the FC layer with output sizes for a square input of side `input`,
    /// named as in torchvision.
    pub fn layers(&self, input: usize) -> Vec<LayerCount> {
        let conv_out = |side: usize, k: usize, s: usize| (side + 2 * (k / 2) - k) / s + 1;
        let mut out = Vec::new();
        let mut side = conv_out(input, self.stem_kernel, self.stem_stride);
        out.push(LayerCount {
            name: "conv1".into(),
            in_channels: 3,
            out_channels: self.stem_channels,
            kernel: self.stem_kernel,
            stride: self.stem_stride,
            out_side: side,
            weighted: true,
        });
        if self.max_pool {
            side = conv_out(side, 3, 2);
        }
        for (i, stage) in self.stages.iter().enumerate() {
            for (j, b) in stage.iter().enumerate() {
                let p = format!("layer{}.{}", i + 1, j);
                let in_side = side;
                let out_side = conv_out(in_side, 3, b.stride);
                let mut conv =
                    |name: &str, cin: usize, cout: usize, k: usize, s: usize, o: usize, w: bool| {
                        out.push(LayerCount {
                            name: format!("{p}.{name}"),
                            in_channels: cin,
                            out_channels: cout,
                            kernel: k,
                            stride: s,
                            out_side: o,
                            weighted: w,
                        })
                    };
                if b.bottleneck {
                    let (s1, s3) = if b.stride_in_1x1 {
                        (b.stride, 1)
                    } else {
                        (1, b.stride)
                    };
                    let side1 = if b.stride_in_1x1 { out_side } else { in_side };
                    conv("conv1", b.in_channels, b.width, 1, s1, side1, true);
                    conv("conv2", b.width, b.width, 3, s3, out_side, true);
                    conv("conv3", b.width, b.out_channels, 1, 1, out_side, true);
                } else {
                    conv("conv1", b.in_channels, b.width, 3, b.stride, out_side, true);
                    conv("conv2", b.width, b.out_channels, 3, 1, out_side, true);
                }
                if let ShortcutPlan::Projection { stride } = b.shortcut {
                    conv(
                        "downsample.0",
                        b.in_channels,
                        b.out_channels,
                        1,
                        stride,
                        out_side,
                        false,
                    );
                }
                side = out_side;
            }
        }
        out.push(LayerCount {
            name: "fc".into(),
            in_channels: self.features,
            out_channels: self.classes,
            kernel: 1,
            stride: 1,
            out_side: 1,
            weighted: true,
        });
        out
    }

    /// Layers with weights on the main path (convs + FC): the paper's "depth".
    pub fn depth(&self) -> usize {
        self.layers(32).iter().filter(|l| l.weighted).count()
    }

    /// Trainable parameters: conv and FC weights, FC bias, BN weight and bias.
    pub fn params(&self) -> u64 {
        let layers = self.layers(self.nominal_input());
        let weights: u64 = layers.iter().map(LayerCount::params).sum();
        // Every conv is followed by a BN with weight and bias.
        let bn: u64 = layers
            .iter()
            .filter(|l| l.name != "fc")
            .map(|l| 2 * l.out_channels as u64)
            .sum();
        weights + bn
    }

    /// Multiply-adds of one forward pass on a `input`×`input` image (convs + FC).
    pub fn mult_adds(&self, input: usize) -> u64 {
        self.layers(input).iter().map(LayerCount::mult_adds).sum()
    }

    /// 32 for CIFAR, 224 for ImageNet.
    pub fn nominal_input(&self) -> usize {
        match self.family {
            Family::Cifar => 32,
            Family::Imagenet => crate::paper::CROP as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cifar(depth: usize) -> Plan {
        Plan::new(&ModelConfig::cifar(depth, NetKind::Residual))
    }
    fn imagenet(depth: usize, sc: Shortcut) -> Plan {
        Plan::new(&ModelConfig::imagenet(depth, NetKind::Residual, sc))
    }

    /// Option A: Table 6's "# params" (0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M) rounded, exactly
    /// as akamaster/pytorch_resnet_cifar10's README lists them (0.27M ... 19.4M) for the same
    /// network. Option B: torchvision's documented `num_params` of `resnet18..resnet152`.
    #[test]
    fn cifar_option_a_params() {
        for (d, p) in [
            (20, 269_722),
            (32, 464_154),
            (44, 658_586),
            (56, 853_018),
            (110, 1_727_962),
            (1202, 19_421_274),
        ] {
            assert_eq!(cifar(d).params(), p, "resnet{d}");
            assert_eq!(cifar(d).depth(), d);
            let table6 = crate::paper::TABLE6.iter().find(|r| r.depth == d).unwrap();
            let digits = if p < 1_000_000 { 2 } else { 1 };
            let shown = format!("{:.digits$}M", p as f64 / 1e6);
            assert_eq!(shown, table6.params_shown(), "resnet{d}");
        }
    }

    #[test]
    fn imagenet_option_b_params_match_torchvision() {
        for (d, p) in crate::paper::TORCHVISION_PARAMS {
            assert_eq!(imagenet(d, Shortcut::B).params(), p, "resnet{d}");
            assert_eq!(imagenet(d, Shortcut::B).depth(), d);
        }
    }

    /// Table 1's FLOPs row (multiply-adds, `paper::TABLE1_GFLOPS`), within 10 %.
    #[test]
    fn imagenet_mult_adds_within_ten_percent_of_table1() {
        for (d, gflops) in crate::paper::TABLE1_GFLOPS {
            let paper = gflops * 1e9;
            let ours = imagenet(d, Shortcut::B).mult_adds(crate::paper::CROP as usize) as f64;
            assert!(
                (ours / paper - 1.0).abs() < 0.10,
                "resnet{d}: {ours:e} vs {paper:e}"
            );
        }
        // torchvision's v1.5 placement (stride on the 3×3) gives its published GMACs.
        let mut cfg = ModelConfig::imagenet(50, NetKind::Residual, Shortcut::B);
        cfg.stride_in_1x1 = false;
        let v15 = Plan::new(&cfg).mult_adds(crate::paper::CROP as usize) as f64;
        let published = crate::paper::TORCHVISION_RESNET50_GMACS * 1e9;
        assert!((v15 / published - 1.0).abs() < 0.01, "{v15:e}");
    }

    #[test]
    fn option_a_is_parameter_free_and_c_projects_everywhere() {
        let a = imagenet(34, Shortcut::A);
        let b = imagenet(34, Shortcut::B);
        let c = imagenet(34, Shortcut::C);
        assert!(a.params() < b.params() && b.params() < c.params());
        let plain = Plan::new(&ModelConfig::imagenet(34, NetKind::Plain, Shortcut::A));
        assert_eq!(plain.params(), a.params());
        assert!(c
            .stages
            .iter()
            .flatten()
            .all(|b| matches!(b.shortcut, ShortcutPlan::Projection { .. })));
        // The paper: option B adds projections only at the 3 stage transitions.
        let proj = b
            .stages
            .iter()
            .flatten()
            .filter(|b| matches!(b.shortcut, ShortcutPlan::Projection { .. }))
            .count();
        assert_eq!(proj, 3);
    }

    #[test]
    fn zero_pad_splits_extra_channels() {
        let p = cifar(20);
        assert_eq!(
            p.stages[1][0].shortcut,
            ShortcutPlan::ZeroPad {
                stride: 2,
                before: 8,
                after: 8
            }
        );
        assert_eq!(p.stages[1][1].shortcut, ShortcutPlan::Identity);
        let p50 = imagenet(50, Shortcut::A);
        assert_eq!(
            p50.stages[0][0].shortcut,
            ShortcutPlan::ZeroPad {
                stride: 1,
                before: 96,
                after: 96
            }
        );
    }

    #[test]
    fn cifar_feature_maps_are_32_16_8() {
        let layers = cifar(20).layers(32);
        let side = |n: &str| layers.iter().find(|l| l.name == n).unwrap().out_side;
        assert_eq!(side("layer1.0.conv1"), 32);
        assert_eq!(side("layer2.0.conv1"), 16);
        assert_eq!(side("layer3.2.conv2"), 8);
        // ResNet-20 is about 41 M multiply-adds per 32×32 image.
        let m = cifar(20).mult_adds(32);
        assert!((40_000_000..42_000_000).contains(&m), "{m}");
    }
}
