//! The networks of §3.3 / Table 1 (ImageNet) and §4.2 (CIFAR-10), built from one [`ModelConfig`].
//!
//! A pure builder over `nn::Path` in the style of tch-rs' `vision::resnet`: torchvision parameter
//! names (`conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.downsample.0`, `fc`), BN after every conv
//! and before the ReLU, He (Kaiming normal, fan-out, as torchvision and fb.resnet.torch)
//! initialization for convolutions, BN weight 1 and bias 0. The structure comes from
//! [`crate::net::arch::Plan`], which also gives the parameter and FLOP counts.
//!
//! The one forward pass can also report every main-path layer response (a conv's output after
//! its BN, before the ReLU and, in residual blocks, before the shortcut addition) to a tap:
//! §4.2's Figure 7 measures the standard deviations of these ([`ResNet::forward_tapped`]).
use crate::config::ModelConfig;
use crate::net::arch::{BlockPlan, Plan, ShortcutPlan};
use tch::nn::{self, ModuleT};
use tch::Tensor;

fn conv(p: nn::Path, cin: usize, cout: usize, k: usize, stride: usize) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride: stride as i64,
        padding: (k / 2) as i64,
        bias: false,
        ws_init: nn::Init::Kaiming {
            dist: nn::init::NormalOrUniform::Normal,
            fan: nn::init::FanInOut::FanOut,
            non_linearity: nn::init::NonLinearity::ReLU,
        },
        ..Default::default()
    };
    nn::conv2d(p, cin as i64, cout as i64, k as i64, cfg)
}

fn bn(p: nn::Path, c: usize) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(p, c as i64, cfg)
}

#[derive(Debug)]
enum ShortcutOp {
    None,
    Identity,
    ZeroPad {
        stride: i64,
        before: i64,
        after: i64,
    },
    Projection {
        conv: Box<nn::Conv2D>,
        bn: Box<nn::BatchNorm>,
    },
}

impl ShortcutOp {
    fn new(p: &nn::Path, b: &BlockPlan) -> Self {
        match b.shortcut {
            ShortcutPlan::None => ShortcutOp::None,
            ShortcutPlan::Identity => ShortcutOp::Identity,
            ShortcutPlan::ZeroPad {
                stride,
                before,
                after,
            } => ShortcutOp::ZeroPad {
                stride: stride as i64,
                before: before as i64,
                after: after as i64,
            },
            ShortcutPlan::Projection { stride } => {
                let d = p / "downsample";
                ShortcutOp::Projection {
                    conv: Box::new(conv(&d / "0", b.in_channels, b.out_channels, 1, stride)),
                    bn: Box::new(bn(&d / "1", b.out_channels)),
                }
            }
        }
    }

    /// `None` for plain nets, otherwise the tensor to add to the block's output.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Option<Tensor> {
        match self {
            ShortcutOp::None => None,
            ShortcutOp::Identity => Some(xs.shallow_clone()),
            ShortcutOp::ZeroPad {
                stride,
                before,
                after,
            } => Some(zero_pad_shortcut(xs, *stride, *before, *after)),
            ShortcutOp::Projection { conv, bn } => {
                Some(xs.apply(conv.as_ref()).apply_t(bn.as_ref(), train))
            }
        }
    }
}

/// Option A (§3.3): identity on the first channels of a stride-subsampled input, zeros for the
/// extra channels. [N, C, H, W] -> [N, before + C + after, ceil(H/s), ceil(W/s)].
pub fn zero_pad_shortcut(xs: &Tensor, stride: i64, before: i64, after: i64) -> Tensor {
    let sub = if stride > 1 {
        xs.slice(2, 0, None, stride).slice(3, 0, None, stride)
    } else {
        xs.shallow_clone()
    };
    if before == 0 && after == 0 {
        sub
    } else {
        // constant_pad_nd pads from the last dim backwards: (W, W, H, H, C, C).
        sub.constant_pad_nd([0, 0, 0, 0, before, after])
    }
}

/// One layer response as the forward pass produces it: the output of the main-path conv `name`
/// (torchvision's name, e.g. `conv1` or `layer2.0.conv2`) with a `kernel`×`kernel` filter, after
/// its BN and before the nonlinearity (and before the shortcut addition). `output` is only valid
/// during the call: the forward pass goes on with an in-place ReLU, so copy it to keep it.
#[derive(Debug)]
pub struct Response<'a> {
    pub name: &'a str,
    pub kernel: i64,
    pub output: &'a Tensor,
}

/// Receives every [`Response`] of a forward pass, in forward order.
pub type Tap<'t> = &'t mut dyn FnMut(Response<'_>);

/// Calls `tap` (when there is one) with the response of `conv`.
fn report(tap: &mut Option<Tap<'_>>, name: &str, conv: &nn::Conv2D, output: &Tensor) {
    if let Some(t) = tap.as_mut() {
        t(Response {
            name,
            kernel: conv.ws.size()[2],
            output,
        });
    }
}

#[derive(Debug)]
struct Block {
    convs: Vec<(nn::Conv2D, nn::BatchNorm)>,
    /// Full names of the convs (`layer1.0.conv1`, ...), for the responses.
    names: Vec<String>,
    shortcut: ShortcutOp,
}

impl Block {
    fn new(p: nn::Path, b: &BlockPlan) -> Self {
        let convs = if b.bottleneck {
            let (s1, s3) = if b.stride_in_1x1 {
                (b.stride, 1)
            } else {
                (1, b.stride)
            };
            vec![
                (
                    conv(&p / "conv1", b.in_channels, b.width, 1, s1),
                    bn(&p / "bn1", b.width),
                ),
                (
                    conv(&p / "conv2", b.width, b.width, 3, s3),
                    bn(&p / "bn2", b.width),
                ),
                (
                    conv(&p / "conv3", b.width, b.out_channels, 1, 1),
                    bn(&p / "bn3", b.out_channels),
                ),
            ]
        } else {
            vec![
                (
                    conv(&p / "conv1", b.in_channels, b.width, 3, b.stride),
                    bn(&p / "bn1", b.width),
                ),
                (
                    conv(&p / "conv2", b.width, b.out_channels, 3, 1),
                    bn(&p / "bn2", b.out_channels),
                ),
            ]
        };
        let names = (1..=convs.len())
            .map(|i| format!("{}.conv{i}", p.components().collect::<Vec<_>>().join(".")))
            .collect();
        Block {
            convs,
            names,
            shortcut: ShortcutOp::new(&p, b),
        }
    }

    fn forward(&self, xs: &Tensor, train: bool, tap: &mut Option<Tap<'_>>) -> Tensor {
        let last = self.convs.len() - 1;
        let mut ys = xs.shallow_clone();
        for (i, ((c, b), name)) in self.convs.iter().zip(&self.names).enumerate() {
            ys = ys.apply(c).apply_t(b, train);
            report(tap, name, c, &ys);
            if i < last {
                ys = ys.relu_();
            }
        }
        match self.shortcut.forward_t(xs, train) {
            Some(sc) => (ys + sc).relu_(),
            None => ys.relu_(),
        }
    }
}

/// A residual or plain network of the paper.
#[derive(Debug)]
pub struct ResNet {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    max_pool: bool,
    blocks: Vec<Block>,
    fc: nn::Linear,
    pub plan: Plan,
}

impl ResNet {
    /// Builds the network described by `cfg` (validated) under `p`.
    pub fn new(p: &nn::Path, cfg: &ModelConfig) -> ResNet {
        let plan = Plan::new(cfg);
        let conv1 = conv(
            p / "conv1",
            3,
            plan.stem_channels,
            plan.stem_kernel,
            plan.stem_stride,
        );
        let bn1 = bn(p / "bn1", plan.stem_channels);
        let mut blocks = Vec::new();
        for (i, stage) in plan.stages.iter().enumerate() {
            let lp = p / format!("layer{}", i + 1);
            for (j, b) in stage.iter().enumerate() {
                blocks.push(Block::new(&lp / j, b));
            }
        }
        // torchvision's nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
        let bound = 1.0 / (plan.features as f64).sqrt();
        let fc = nn::linear(
            p / "fc",
            plan.features as i64,
            plan.classes as i64,
            nn::LinearConfig {
                ws_init: nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
                bs_init: Some(nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                }),
                bias: true,
            },
        );
        ResNet {
            conv1,
            bn1,
            max_pool: plan.max_pool,
            blocks,
            fc,
            plan,
        }
    }
}

impl ResNet {
    /// The forward pass of [`ModuleT::forward_t`], reporting every main-path layer response
    /// (stem conv, then each block's convs, in order) to `tap` on the way. Projection shortcuts
    /// are not main-path layers and are not reported.
    pub fn forward_tapped(&self, xs: &Tensor, train: bool, tap: Tap<'_>) -> Tensor {
        self.forward(xs, train, &mut Some(tap))
    }

    /// [N, 3, H, W] -> [N, classes] logits; any H, W (global average pooling before the FC).
    fn forward(&self, xs: &Tensor, train: bool, tap: &mut Option<Tap<'_>>) -> Tensor {
        // CIFAR: [N,16,32,32]; ImageNet: [N,64,112,112] then max pool to [N,64,56,56].
        let mut ys = xs.apply(&self.conv1).apply_t(&self.bn1, train);
        report(tap, "conv1", &self.conv1, &ys);
        ys = ys.relu_();
        if self.max_pool {
            ys = ys.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for b in &self.blocks {
            ys = b.forward(&ys, train, tap);
        }
        // Global average pool: [N, C, h, w] -> [N, C].
        ys.adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .apply(&self.fc)
    }
}

impl ModuleT for ResNet {
    /// [N, 3, H, W] -> [N, classes] logits.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward(xs, train, &mut None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NetKind, Shortcut};
    use tch::{Device, Kind as TKind};

    fn build(cfg: &ModelConfig) -> (nn::VarStore, ResNet) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNet::new(&vs.root(), cfg);
        (vs, net)
    }

    fn trainable(vs: &nn::VarStore) -> u64 {
        vs.trainable_variables()
            .iter()
            .map(|t| t.numel() as u64)
            .sum()
    }

    #[test]
    fn cifar_shapes_and_counts_for_every_shortcut() {
        for kind in [NetKind::Residual, NetKind::Plain] {
            for sc in [Shortcut::A, Shortcut::B, Shortcut::C] {
                let mut cfg = ModelConfig::cifar(20, kind);
                cfg.shortcut = Some(sc);
                let (vs, net) = build(&cfg);
                let x = Tensor::randn([2, 3, 32, 32], (TKind::Float, Device::Cpu));
                assert_eq!(net.forward_t(&x, true).size(), vec![2, 10]);
                assert_eq!(net.forward_t(&x, false).size(), vec![2, 10]);
                assert_eq!(trainable(&vs), net.plan.params(), "{kind:?} {sc:?}");
            }
        }
    }

    #[test]
    fn imagenet_shapes_for_every_shortcut() {
        for depth in [18, 50] {
            for sc in [Shortcut::A, Shortcut::B, Shortcut::C] {
                let mut cfg = ModelConfig::imagenet(depth, NetKind::Residual, sc);
                cfg.classes = Some(7);
                let (vs, net) = build(&cfg);
                // Small input keeps the test fast; the stem and 4 stages still apply.
                let x = Tensor::randn([1, 3, 64, 64], (TKind::Float, Device::Cpu));
                assert_eq!(net.forward_t(&x, false).size(), vec![1, 7]);
                assert_eq!(trainable(&vs), net.plan.params(), "{depth} {sc:?}");
            }
        }
        let (_, plain) = build(&ModelConfig::imagenet(34, NetKind::Plain, Shortcut::A));
        let x = Tensor::randn([1, 3, 64, 64], (TKind::Float, Device::Cpu));
        assert_eq!(plain.forward_t(&x, false).size(), vec![1, 1000]);
    }

    #[test]
    fn torchvision_names() {
        let (vs, _) = build(&ModelConfig::imagenet(50, NetKind::Residual, Shortcut::B));
        let vars = vs.variables();
        for name in [
            "conv1.weight",
            "bn1.weight",
            "bn1.running_mean",
            "layer1.0.conv3.weight",
            "layer1.0.downsample.0.weight",
            "layer1.0.downsample.1.running_var",
            "layer4.2.bn3.bias",
            "fc.weight",
            "fc.bias",
        ] {
            assert!(vars.contains_key(name), "missing {name}");
        }
        assert!(!vars.contains_key("layer1.1.downsample.0.weight"));
    }

    #[test]
    fn bn_starts_at_one_and_zero_and_convs_are_he_normal() {
        let (vs, _) = build(&ModelConfig::cifar(56, NetKind::Residual));
        let v = vs.variables();
        assert_eq!(v["bn1.weight"].min().double_value(&[]), 1.0);
        assert_eq!(v["layer2.3.bn2.bias"].abs().max().double_value(&[]), 0.0);
        // fan_out = 64 * 3 * 3 for layer3 convs: std = sqrt(2 / 576).
        let w = &v["layer3.4.conv1.weight"];
        let std = w.std(true).double_value(&[]);
        assert!((std / (2.0f64 / 576.0).sqrt() - 1.0).abs() < 0.05, "{std}");
    }

    /// Every response of one forward pass, copied: (name, kernel, tensor).
    fn tapped(net: &ResNet, x: &Tensor) -> (Tensor, Vec<(String, i64, Tensor)>) {
        let mut seen = Vec::new();
        let y = net.forward_tapped(x, false, &mut |r: Response| {
            seen.push((r.name.to_string(), r.kernel, r.output.copy()))
        });
        (y, seen)
    }

    /// Sets BN running statistics and affine parameters away from 0/1 so that eval-mode BN does
    /// something measurable.
    fn perturb_bn(vs: &nn::VarStore) {
        tch::manual_seed(3);
        let _g = tch::no_grad_guard();
        for (name, mut v) in vs.variables() {
            if name.contains("bn") || name.contains("downsample.1") {
                let r = Tensor::rand_like(&v);
                if name.ends_with("running_var") || name.ends_with("weight") {
                    v.copy_(&(r + 0.5));
                } else {
                    v.copy_(&(r - 0.5));
                }
            }
        }
    }

    #[test]
    fn tapped_forward_is_the_forward_and_reports_the_plans_main_path_convs() {
        for (cfg, side) in [
            (ModelConfig::cifar(14, NetKind::Residual), 16),
            (ModelConfig::cifar(8, NetKind::Plain), 16),
            (
                ModelConfig::imagenet(50, NetKind::Residual, Shortcut::B),
                64,
            ),
        ] {
            let (vs, net) = build(&cfg);
            perturb_bn(&vs);
            let x = Tensor::randn([2, 3, side, side], (TKind::Float, Device::Cpu));
            let (y, seen) = tapped(&net, &x);
            assert!(y.equal(&net.forward_t(&x, false)));
            let want: Vec<(String, i64)> = net
                .plan
                .layers(side as usize)
                .into_iter()
                .filter(|l| l.weighted && l.name != "fc")
                .map(|l| (l.name, l.kernel as i64))
                .collect();
            let got: Vec<(String, i64)> = seen.iter().map(|(n, k, _)| (n.clone(), *k)).collect();
            assert_eq!(got, want, "{cfg:?}");
        }
    }

    #[test]
    fn responses_are_bn_outputs_before_the_relu_and_before_the_addition() {
        let (vs, net) = build(&ModelConfig::cifar(8, NetKind::Residual));
        perturb_bn(&vs);
        let v = vs.variables();
        let x = Tensor::randn([3, 3, 8, 8], (TKind::Float, Device::Cpu));
        let (_, seen) = tapped(&net, &x);
        // Directly from the weights: conv, then eval-mode BN with the running statistics.
        let conv_bn = |h: &Tensor, conv: &str, bn: &str| {
            let w = &v[&format!("{conv}.weight")];
            h.conv2d(w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1)
                .batch_norm(
                    Some(&v[&format!("{bn}.weight")]),
                    Some(&v[&format!("{bn}.bias")]),
                    Some(&v[&format!("{bn}.running_mean")]),
                    Some(&v[&format!("{bn}.running_var")]),
                    false,
                    0.1,
                    1e-5,
                    false,
                )
        };
        let stem = conv_bn(&x, "conv1", "bn1");
        let r1 = conv_bn(&stem.relu(), "layer1.0.conv1", "layer1.0.bn1");
        let r2 = conv_bn(&r1.relu(), "layer1.0.conv2", "layer1.0.bn2");
        assert_eq!(seen[0].0, "conv1");
        assert!(seen[0].2.allclose(&stem, 1e-5, 1e-5, false));
        assert!(seen[1].2.allclose(&r1, 1e-5, 1e-5, false));
        // Before the addition: the residual function alone, with negative values kept.
        assert!(seen[2].2.allclose(&r2, 1e-5, 1e-5, false));
        assert!(seen[2].2.min().double_value(&[]) < 0.0);
    }

    #[test]
    fn zero_pad_keeps_values_and_pads_zeros() {
        let x = Tensor::arange(2 * 4 * 4 * 4, (TKind::Float, Device::Cpu)).view([2, 4, 4, 4]);
        let y = zero_pad_shortcut(&x, 2, 2, 2);
        assert_eq!(y.size(), vec![2, 8, 2, 2]);
        assert_eq!(
            y.narrow(1, 0, 2).abs().sum(TKind::Float).double_value(&[]),
            0.0
        );
        assert_eq!(
            y.narrow(1, 6, 2).abs().sum(TKind::Float).double_value(&[]),
            0.0
        );
        // y[0, 2, 1, 1] = x[0, 0, 2, 2]
        assert_eq!(y.double_value(&[0, 2, 1, 1]), x.double_value(&[0, 0, 2, 2]));
    }
}
