//! Figure 6 of the paper (§4.2): training (dashed, thin) and test (bold) error against iterations,
//! one panel per network kind side by side, one colour per depth.
//!
//! The SVG is written here by hand (exact dashed/bold styling, no plotting dependency) and
//! rasterized to PNG with `resvg` (pure Rust). Text uses the system fonts found by fontdb; where
//! none are installed the lines, axes and legend swatches still render, only the labels are lost.
use anyhow::{Context, Result};
use std::fmt::Write as _;

/// One network: its training and test curves as (iteration, error %) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    /// Any SVG colour, e.g. `#1f77b4`.
    pub color: String,
    pub train: Vec<(f64, f64)>,
    pub test: Vec<(f64, f64)>,
}

/// One panel of the figure (the paper's left "plain" and right "ResNet" plots).
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub title: String,
    pub panels: Vec<Panel>,
}

/// Colours per depth, in order of increasing depth (the paper's Figure 6 uses one hue per depth).
pub const PALETTE: [&str; 8] = [
    "#e6a01a", "#2a9d3a", "#1f5fbf", "#d62728", "#7b3fa0", "#17a2b8", "#8c564b", "#555555",
];

/// The paper plots iterations in units of 1e4.
pub const X_UNIT: f64 = 1e4;

/// Figure 6's y range is 0–20 %. It is used when every curve ends in its lower three quarters
/// (at most 15 %; early, higher errors are clipped at the top as in the paper); otherwise the
/// range grows to twice the highest end (so short runs, ending near 20 %, still show their last
/// part), or to fit all the data where that is less, rounded up to a tick.
pub fn y_range(panels: &[Panel]) -> (f64, f64) {
    let series = panels.iter().flat_map(|p| &p.series);
    let last = |v: &Vec<(f64, f64)>| v.last().map(|p| p.1);
    let ends: Vec<f64> = series
        .clone()
        .flat_map(|s| [last(&s.train), last(&s.test)])
        .flatten()
        .filter(|v| v.is_finite())
        .collect();
    if !ends.is_empty() && ends.iter().all(|&e| e <= 15.0) {
        return (0.0, 20.0);
    }
    let max = series
        .flat_map(|s| s.train.iter().chain(&s.test).map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let top_end = ends.iter().copied().fold(0.0f64, f64::max);
    let want = if top_end > 0.0 {
        max.min(2.0 * top_end)
    } else {
        max
    };
    if want <= 0.0 {
        return (0.0, 20.0);
    }
    let step = nice_step(want / 5.0);
    (0.0, (want / step).ceil() * step)
}

/// The smallest of 1, 2, 2.5, 5 × 10^k that is at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw > 0.0 && raw.is_finite()) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// Tick values from `lo` to `hi` (inclusive) about `target` apart in count.
pub fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let step = nice_step((hi - lo) / target.max(1) as f64);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A tick label without trailing zeros (`0.005`, `2.5`, `20`).
fn fmt_tick(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PANEL_W: f64 = 470.0;
const PANEL_H: f64 = 360.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 48.0;
const HEAD: f64 = 30.0;
const FOOT: f64 = 26.0;
const FONT: &str = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif";

/// Renders the figure as an SVG document: panels side by side with shared scales, dashed thin
/// training curves (`class="train"`), bold test curves (`class="test"`), a legend per panel.
pub fn to_svg(fig: &Figure) -> String {
    let n = fig.panels.len().max(1);
    let width = n as f64 * PANEL_W;
    let height = HEAD + PANEL_H + FOOT;
    let (y0, y1) = y_range(&fig.panels);
    let x_max = fig
        .panels
        .iter()
        .flat_map(|p| &p.series)
        .flat_map(|s| s.train.iter().chain(&s.test).map(|p| p.0))
        .fold(0.0f64, f64::max)
        .max(1.0)
        / X_UNIT;
    // The x axis ends at the last iteration, as in the paper (0 to 6.4 for 64k iterations).
    let x1 = x_max;
    let x_ticks = ticks(0.0, x1, 7);
    let y_ticks = ticks(y0, y1, 4);

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT}">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" font-size="15" text-anchor="middle">{}</text>
"#,
        width / 2.0,
        esc(&fig.title)
    );
    for (i, panel) in fig.panels.iter().enumerate() {
        let ox = i as f64 * PANEL_W + LEFT;
        let oy = HEAD + TOP;
        let pw = PANEL_W - LEFT - RIGHT;
        let ph = PANEL_H - TOP - BOTTOM;
        let px = |x: f64| ox + (x / X_UNIT) / x1 * pw;
        let py = |y: f64| oy + ph - (y - y0) / (y1 - y0) * ph;
        let _ = writeln!(
            s,
            r#"<g class="panel"><clipPath id="clip{i}"><rect x="{ox}" y="{oy}" width="{pw}" height="{ph}"/></clipPath>
<text x="{}" y="{}" font-size="14" text-anchor="middle">{}</text>"#,
            ox + pw / 2.0,
            oy - 10.0,
            esc(&panel.title)
        );
        // Grid lines and tick labels.
        for &t in &y_ticks {
            let y = py(t);
            let _ = writeln!(
                s,
                r##"<line x1="{ox}" y1="{y}" x2="{}" y2="{y}" stroke="#e4e4e4" stroke-width="1"/><text x="{}" y="{}" font-size="12" text-anchor="end">{}</text>"##,
                ox + pw,
                ox - 6.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        for &t in &x_ticks {
            let x = ox + t / x1 * pw;
            let _ = writeln!(
                s,
                r##"<line x1="{x}" y1="{oy}" x2="{x}" y2="{}" stroke="#e4e4e4" stroke-width="1"/><text x="{x}" y="{}" font-size="12" text-anchor="middle">{}</text>"##,
                oy + ph,
                oy + ph + 17.0,
                fmt_tick(t)
            );
        }
        let _ = writeln!(
            s,
            r#"<rect x="{ox}" y="{oy}" width="{pw}" height="{ph}" fill="none" stroke="black" stroke-width="1"/>
<text x="{}" y="{}" font-size="13" text-anchor="middle">iter. (1e4)</text>
<text x="{}" y="{}" font-size="13" text-anchor="middle" transform="rotate(-90 {} {})">error (%)</text>"#,
            ox + pw / 2.0,
            oy + ph + 36.0,
            ox - 40.0,
            oy + ph / 2.0,
            ox - 40.0,
            oy + ph / 2.0
        );
        // Curves: training first so the bold test curves are drawn on top.
        for (class, width, dash) in [
            ("train", 1.0, " stroke-dasharray=\"5,3\""),
            ("test", 2.5, ""),
        ] {
            for ser in &panel.series {
                let pts = if class == "train" {
                    &ser.train
                } else {
                    &ser.test
                };
                if pts.is_empty() {
                    continue;
                }
                let coords: Vec<String> = pts
                    .iter()
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                    .collect();
                let _ = writeln!(
                    s,
                    r#"<polyline class="{class}" points="{}" fill="none" stroke="{}" stroke-width="{width}"{dash} stroke-linejoin="round" clip-path="url(#clip{i})"/>"#,
                    coords.join(" "),
                    esc(&ser.color)
                );
            }
        }
        // Legend, top right of the plot area, one entry per depth (bold swatch as in the paper).
        let lw = 118.0;
        let lh = 8.0 + 17.0 * panel.series.len() as f64;
        let lx = ox + pw - lw - 8.0;
        let ly = oy + 8.0;
        if !panel.series.is_empty() {
            let _ = writeln!(
                s,
                r##"<rect x="{lx}" y="{ly}" width="{lw}" height="{lh}" fill="white" fill-opacity="0.9" stroke="#999999" stroke-width="0.8"/>"##
            );
        }
        for (k, ser) in panel.series.iter().enumerate() {
            let y = ly + 14.0 + 17.0 * k as f64;
            let _ = writeln!(
                s,
                r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2.5"/><text class="legend" x="{}" y="{}" font-size="12">{}</text>"#,
                lx + 8.0,
                y - 4.0,
                lx + 36.0,
                y - 4.0,
                esc(&ser.color),
                lx + 42.0,
                y,
                esc(&ser.label)
            );
        }
        s += "</g>\n";
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" font-size="12" text-anchor="middle" fill="#333333">dashed lines: training error; bold lines: test error</text>
</svg>"##,
        width / 2.0,
        height - 9.0
    );
    s
}

/// Rasterizes an SVG to PNG bytes at `scale` × its size, on white.
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    // Without fonts usvg drops the text elements and keeps everything else.
    opt.fontdb_mut().load_system_fonts();
    let tree = usvg::Tree::from_str(svg, &opt).context("parsing the figure's SVG")?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .context("figure size overflows")?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .context("cannot allocate the figure's pixels")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().context("encoding the figure as PNG")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(label: &str, color: &str, end: f64) -> Series {
        let train: Vec<(f64, f64)> = (0..=20)
            .map(|i| (i as f64 * 1000.0, 60.0 / (1.0 + i as f64) + end - 3.0))
            .collect();
        let test = train
            .iter()
            .step_by(5)
            .map(|&(x, y)| (x, y + 3.0))
            .collect();
        Series {
            label: label.into(),
            color: color.into(),
            train,
            test,
        }
    }

    fn figure(end: f64) -> Figure {
        Figure {
            title: "t".into(),
            panels: vec![
                Panel {
                    title: "plain".into(),
                    series: vec![
                        series("plain-20", PALETTE[0], end),
                        series("plain-56", PALETTE[1], end + 2.0),
                    ],
                },
                Panel {
                    title: "ResNet".into(),
                    series: vec![
                        series("ResNet-20", PALETTE[0], end),
                        series("ResNet-56", PALETTE[1], end - 1.0),
                    ],
                },
            ],
        }
    }

    #[test]
    fn nice_steps_and_ticks() {
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(4.0), 5.0);
        assert_eq!(nice_step(2.2), 2.5);
        assert_eq!(nice_step(10.0), 10.0);
        assert_eq!(ticks(0.0, 20.0, 4), vec![0.0, 5.0, 10.0, 15.0, 20.0]);
        assert_eq!(ticks(0.0, 6.4, 7), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // 300 iterations in units of 1e4: labels stay distinct.
        let labels: Vec<String> = ticks(0.0, 0.03, 7).into_iter().map(fmt_tick).collect();
        assert_eq!(
            labels,
            ["0", "0.005", "0.01", "0.015", "0.02", "0.025", "0.03"]
        );
        assert_eq!(fmt_tick(2.5), "2.5");
    }

    #[test]
    fn paper_range_when_curves_end_below_15_percent_else_twice_the_end() {
        assert_eq!(y_range(&figure(8.0).panels), (0.0, 20.0));
        // Ends at 40 % test error: the top grows to a round value above the largest point.
        let (lo, hi) = y_range(&figure(37.0).panels);
        assert_eq!(lo, 0.0);
        let max = 60.0 + 37.0;
        assert!(hi >= max && hi < max * 1.3, "{hi}");
        // Short runs ending at up to 19.9 % (from about 75 % early): 0–40, the early part clipped.
        assert_eq!(y_range(&figure(15.0).panels), (0.0, 40.0));
    }

    #[test]
    fn svg_has_two_panels_dashed_train_bold_test_and_legends() {
        let svg = to_svg(&figure(8.0));
        assert_eq!(svg.matches(r#"<g class="panel">"#).count(), 2);
        assert_eq!(svg.matches(r#"class="train""#).count(), 4);
        assert_eq!(svg.matches(r#"class="test""#).count(), 4);
        for line in svg.lines().filter(|l| l.contains(r#"class="train""#)) {
            assert!(line.contains("stroke-dasharray") && line.contains(r#"stroke-width="1""#));
        }
        for line in svg.lines().filter(|l| l.contains(r#"class="test""#)) {
            assert!(!line.contains("stroke-dasharray") && line.contains(r#"stroke-width="2.5""#));
        }
        for label in ["plain-20", "plain-56", "ResNet-20", "ResNet-56"] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        }
        assert!(svg.contains("iter. (1e4)") && svg.contains("error (%)"));
        // x axis in units of 1e4: the 20k-iteration curves end at tick "2".
        assert!(svg.contains(">2</text>"));
    }

    #[test]
    fn png_decodes_with_plausible_size_and_content() {
        let svg = to_svg(&figure(8.0));
        let png = svg_to_png(&svg, 1.0).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(
            (img.width(), img.height()),
            (2 * PANEL_W as u32, (HEAD + PANEL_H + FOOT) as u32)
        );
        let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        let total = (img.width() * img.height()) as usize;
        assert!(white < total && white > total / 2, "{white} of {total}");
        // Some pixel carries a curve colour (ResNet-20's orange), not just black and grey.
        assert!(img
            .pixels()
            .any(|p| p.0[0] > 200 && p.0[1] > 120 && p.0[1] < 190 && p.0[2] < 80));
    }
}
