//! `resnet info`: Table 1 (layers, FLOPs) and Table 6 (#params) computed from the code, with the
//! paper's figures beside ours.
//!
//! Counted: parameters = conv and FC weights, FC bias, BN weight and bias (not BN running
//! statistics). Multiply-adds = all convolutions (projection shortcuts included) and the FC layer
//! for one image at the family's input size (32×32 or 224×224); BN, ReLU, pooling and shortcut
//! additions are not counted (as Table 1 and torchvision's GFLOPS).
use crate::config::{Family, ModelConfig, NetKind, Shortcut};
use crate::net::arch::Plan;
use crate::present::table::Table;

/// Table 6 (#params, millions) for the CIFAR-10 ResNets, and Table 1 (FLOPs, ×10⁹) for ImageNet.
pub fn paper_params_millions(cfg: &ModelConfig) -> Option<f64> {
    if cfg.family != Family::Cifar || cfg.kind != NetKind::Residual || cfg.shortcut() != Shortcut::A
    {
        return None;
    }
    Some(match cfg.depth {
        20 => 0.27,
        32 => 0.46,
        44 => 0.66,
        56 => 0.85,
        110 => 1.7,
        1202 => 19.4,
        _ => return None,
    })
}

/// Table 1's FLOPs row (multiply-adds ×10⁹); §4.1 gives plain nets the same figures.
pub fn paper_gflops(cfg: &ModelConfig) -> Option<f64> {
    if cfg.family != Family::Imagenet {
        return None;
    }
    Some(match cfg.depth {
        18 => 1.8,
        34 => 3.6,
        50 => 3.8,
        101 => 7.6,
        152 => 11.3,
        _ => return None,
    })
}

/// torchvision's parameter counts for resnet18..152 (its option-B nets).
pub fn torchvision_params(cfg: &ModelConfig) -> Option<u64> {
    if cfg.family != Family::Imagenet
        || cfg.kind != NetKind::Residual
        || cfg.shortcut() != Shortcut::B
    {
        return None;
    }
    Some(match cfg.depth {
        18 => 11_689_512,
        34 => 21_797_672,
        50 => 25_557_032,
        101 => 44_549_160,
        152 => 60_192_808,
        _ => return None,
    })
}

/// Every network the paper trains: CIFAR plain/residual 20–110 and ResNet-1202 (Table 6),
/// ImageNet plain-18/34, ResNet-18/34 with A/B/C, ResNet-50/101/152 with B (Tables 1–3).
pub fn paper_models() -> Vec<ModelConfig> {
    let mut v = Vec::new();
    for kind in [NetKind::Plain, NetKind::Residual] {
        for d in [20, 32, 44, 56, 110] {
            v.push(ModelConfig::cifar(d, kind));
        }
    }
    v.push(ModelConfig::cifar(1202, NetKind::Residual));
    for d in [18, 34] {
        v.push(ModelConfig::imagenet(d, NetKind::Plain, Shortcut::A));
    }
    for d in [18, 34] {
        for sc in [Shortcut::A, Shortcut::B, Shortcut::C] {
            v.push(ModelConfig::imagenet(d, NetKind::Residual, sc));
        }
    }
    for d in [50, 101, 152] {
        v.push(ModelConfig::imagenet(d, NetKind::Residual, Shortcut::B));
    }
    v
}

fn fmt_opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// One row per model: ours beside the paper's (and torchvision's) figures.
pub fn table(models: &[ModelConfig]) -> Table {
    let mut t = Table::new([
        "model",
        "family",
        "shortcut",
        "layers",
        "params",
        "params_paper_M",
        "params_torchvision",
        "input",
        "mult_adds",
        "mult_adds_G",
        "mult_adds_paper_G",
    ]);
    for m in models {
        let plan = Plan::new(m);
        let input = plan.nominal_input();
        let ma = plan.mult_adds(input);
        t.push(vec![
            m.display_name(),
            format!("{:?}", m.family).to_lowercase(),
            if m.kind == NetKind::Plain {
                "none".into()
            } else {
                format!("{:?}", m.shortcut())
            },
            plan.depth().to_string(),
            plan.params().to_string(),
            fmt_opt(paper_params_millions(m)),
            fmt_opt(torchvision_params(m)),
            format!("{input}x{input}"),
            ma.to_string(),
            format!("{:.3}", ma as f64 / 1e9),
            fmt_opt(paper_gflops(m)),
        ]);
    }
    t
}

/// The note printed under the table: what is counted.
pub const COUNTING_NOTE: &str =
    "params: conv/FC weights, FC bias, BN weight+bias (no running stats). \
mult_adds: every conv (incl. 1x1 projections) + FC for one image; BN, ReLU, pooling, shortcut adds \
not counted. Bottleneck stride on the first 1x1 (paper); model.stride_in_1x1 = false gives \
torchvision's v1.5 placement.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_paper_model_is_within_tolerance_of_the_paper() {
        let t = table(&paper_models());
        assert_eq!(t.rows.len(), 22);
        for r in &t.rows {
            if let Ok(paper) = r[5].parse::<f64>() {
                let ours: f64 = r[4].parse::<f64>().unwrap() / 1e6;
                assert!((ours / paper - 1.0).abs() < 0.03, "{r:?}");
            }
            if let Ok(tv) = r[6].parse::<u64>() {
                assert_eq!(r[4].parse::<u64>().unwrap(), tv, "{r:?}");
            }
            if let Ok(paper) = r[10].parse::<f64>() {
                let ours: f64 = r[9].parse().unwrap();
                assert!((ours / paper - 1.0).abs() < 0.10, "{r:?}");
            }
        }
    }
}
