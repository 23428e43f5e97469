//! `resnet info`: Table 1 (layers, FLOPs) and Table 6 (#params) computed from the code, with the
//! paper's figures beside ours.
//!
//! Counted: parameters = conv and FC weights, FC bias, BN weight and bias (not BN running
//! statistics). Multiply-adds = all convolutions (projection shortcuts included) and the FC layer
//! for one image at the family's input size (32×32 or 224×224); BN, ReLU, pooling and shortcut
//! additions are not counted (as Table 1 and torchvision's GFLOPS).
use crate::config::{ModelConfig, NetKind};
use crate::net::arch::Plan;
use crate::paper::{self, Net};
use crate::present::table::Table;

/// Table 6 (#params, millions) for the CIFAR-10 ResNets ([`paper::table6`]).
pub fn paper_params_millions(cfg: &ModelConfig) -> Option<f64> {
    paper::table6(&Net::of(cfg)).map(|r| r.params_millions)
}

/// Table 1's FLOPs row (multiply-adds ×10⁹, [`paper::table1_gflops`]).
pub fn paper_gflops(cfg: &ModelConfig) -> Option<f64> {
    paper::table1_gflops(&Net::of(cfg))
}

/// torchvision's parameter counts for resnet18..152 (its option-B nets,
/// [`paper::torchvision_params`]).
pub fn torchvision_params(cfg: &ModelConfig) -> Option<u64> {
    paper::torchvision_params(&Net::of(cfg))
}

/// Every network the paper trains ([`paper::all_nets`]).
pub fn paper_models() -> Vec<ModelConfig> {
    paper::all_nets().iter().map(Net::model).collect()
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
            m.family.to_string(),
            if m.kind == NetKind::Plain {
                "none".into()
            } else {
                m.shortcut().to_string()
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
