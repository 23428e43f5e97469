//! Figure 6 of the paper (§4.2): training (dashed, thin) and test (bold) error against iterations,
//! one panel per network kind side by side, one colour per depth; and, in the same style, plain
//! line panels ([`LineFigure`]) for Figure 7's layer responses.
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

/// The paper plots iterations in units of 1e4; runs shorter than that are plotted in plain
/// iterations (0.005, 0.01, ... would hide a 180-iteration schedule's scale).
pub const X_UNIT: f64 = 1e4;

/// The x unit and axis label for curves that end at iteration `last`.
pub fn x_unit(last: f64) -> (f64, &'static str) {
    if last >= X_UNIT {
        (X_UNIT, "iter. (1e4)")
    } else {
        (1.0, "iter.")
    }
}

/// `text` broken at spaces into lines of at most `max_chars` characters (a longer word stands
/// alone on its line).
pub fn wrap(text: &str, max_chars: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= max_chars => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

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

/// Where a legend sits in its plot area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Corner {
    TopRight,
    TopLeft,
    BottomRight,
    BottomLeft,
}

/// One plot area: its position on the page and the data ranges it maps.
struct Frame {
    index: usize,
    ox: f64,
    oy: f64,
    pw: f64,
    ph: f64,
    /// Shown x range (in axis units) and y range.
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    /// The plot area of panel `index` of a row of panels.
    fn new(index: usize, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> Frame {
        Frame {
            index,
            ox: index as f64 * PANEL_W + LEFT,
            oy: HEAD + TOP,
            pw: PANEL_W - LEFT - RIGHT,
            ph: PANEL_H - TOP - BOTTOM,
            x0,
            x1,
            y0,
            y1,
        }
    }
    fn px(&self, x: f64) -> f64 {
        self.ox + (x - self.x0) / (self.x1 - self.x0) * self.pw
    }
    fn py(&self, y: f64) -> f64 {
        self.oy + self.ph - (y - self.y0) / (self.y1 - self.y0) * self.ph
    }

    /// Opens the panel group: clip path, title, grid with tick labels, box and axis labels.
    fn open(&self, s: &mut String, title: &str, x_label: &str, y_label: &str) {
        let (i, ox, oy, pw, ph) = (self.index, self.ox, self.oy, self.pw, self.ph);
        let _ = writeln!(
            s,
            r#"<g class="panel"><clipPath id="clip{i}"><rect x="{ox}" y="{oy}" width="{pw}" height="{ph}"/></clipPath>
<text x="{}" y="{}" font-size="14" text-anchor="middle">{}</text>"#,
            ox + pw / 2.0,
            oy - 10.0,
            esc(title)
        );
        for t in ticks(self.y0, self.y1, 4) {
            let y = self.py(t);
            let _ = writeln!(
                s,
                r##"<line x1="{ox}" y1="{y}" x2="{}" y2="{y}" stroke="#e4e4e4" stroke-width="1"/><text x="{}" y="{}" font-size="12" text-anchor="end">{}</text>"##,
                ox + pw,
                ox - 6.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        for t in ticks(self.x0, self.x1, 7) {
            let x = self.px(t);
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
<text x="{}" y="{}" font-size="13" text-anchor="middle">{}</text>
<text x="{}" y="{}" font-size="13" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
            ox + pw / 2.0,
            oy + ph + 36.0,
            esc(x_label),
            ox - 40.0,
            oy + ph / 2.0,
            ox - 40.0,
            oy + ph / 2.0,
            esc(y_label)
        );
    }

    /// A polyline of `class` through the finite points, clipped to the plot area.
    fn polyline(&self, s: &mut String, class: &str, points: &[(f64, f64)], style: &str) {
        let coords: Vec<String> = points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline class="{class}" points="{}" fill="none" {style} stroke-linejoin="round" clip-path="url(#clip{})"/>"#,
            coords.join(" "),
            self.index
        );
    }

    /// Legend box (x, y, width, height) of `entries` entries in a corner of the plot area.
    fn legend_box(&self, entries: usize, corner: Corner) -> (f64, f64, f64, f64) {
        let lw = 118.0;
        let lh = 8.0 + 17.0 * entries as f64;
        let lx = match corner {
            Corner::TopRight | Corner::BottomRight => self.ox + self.pw - lw - 8.0,
            Corner::TopLeft | Corner::BottomLeft => self.ox + 8.0,
        };
        let ly = match corner {
            Corner::TopRight | Corner::TopLeft => self.oy + 8.0,
            Corner::BottomRight | Corner::BottomLeft => self.oy + self.ph - lh - 8.0,
        };
        (lx, ly, lw, lh)
    }

    /// The corner whose legend box covers the fewest of `points` (top right on a tie).
    fn free_corner(&self, entries: usize, points: &[(f64, f64)]) -> Corner {
        let covered = |c: Corner| {
            let (lx, ly, lw, lh) = self.legend_box(entries, c);
            points
                .iter()
                .map(|&(x, y)| (self.px(x), self.py(y)))
                .filter(|&(x, y)| x >= lx && x <= lx + lw && y >= ly && y <= ly + lh)
                .count()
        };
        [
            Corner::TopRight,
            Corner::TopLeft,
            Corner::BottomRight,
            Corner::BottomLeft,
        ]
        .into_iter()
        .min_by_key(|&c| covered(c))
        .unwrap_or(Corner::TopRight)
    }

    /// Legend in `corner` of the plot area: (label, swatch style) per entry.
    fn legend(&self, s: &mut String, entries: &[(&str, String)], corner: Corner) {
        let (lx, ly, lw, lh) = self.legend_box(entries.len(), corner);
        if !entries.is_empty() {
            let _ = writeln!(
                s,
                r##"<rect x="{lx}" y="{ly}" width="{lw}" height="{lh}" fill="white" fill-opacity="0.9" stroke="#999999" stroke-width="0.8"/>"##
            );
        }
        for (k, (label, style)) in entries.iter().enumerate() {
            let y = ly + 14.0 + 17.0 * k as f64;
            let _ = writeln!(
                s,
                r#"<line x1="{}" y1="{}" x2="{}" y2="{}" {style}/><text class="legend" x="{}" y="{}" font-size="12">{}</text>"#,
                lx + 8.0,
                y - 4.0,
                lx + 36.0,
                y - 4.0,
                lx + 42.0,
                y,
                esc(label)
            );
        }
    }
}

/// Average advance of a character of the 15 px title font (DejaVu Sans is about 0.55 em),
/// rounded up so that a wrapped line never reaches the page's edges.
const TITLE_CHAR_W: f64 = 8.6;
const TITLE_LINE_H: f64 = 19.0;

/// The SVG header with a white page and the figure title, wrapped to the page's width, for
/// `panels` panels side by side; the panels that follow sit in a group moved down by the
/// title's extra lines, which [`close`] ends.
fn page(panels: usize, title: &str) -> (String, f64, f64) {
    let width = panels.max(1) as f64 * PANEL_W;
    let lines = wrap(title, ((width - 20.0) / TITLE_CHAR_W) as usize);
    let extra = TITLE_LINE_H * lines.len().saturating_sub(1) as f64;
    let height = HEAD + extra + PANEL_H + FOOT;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT}">
<rect width="100%" height="100%" fill="white"/>"#
    );
    for (k, line) in lines.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text class="title" x="{}" y="{}" font-size="15" text-anchor="middle">{}</text>"#,
            width / 2.0,
            20.0 + TITLE_LINE_H * k as f64,
            esc(line)
        );
    }
    let _ = writeln!(s, r#"<g transform="translate(0 {extra})">"#);
    (s, width, height)
}

/// The footnote line and the end of the document.
fn close(s: &mut String, width: f64, height: f64, note: &str) {
    let _ = writeln!(
        s,
        r##"</g>
<text x="{}" y="{}" font-size="12" text-anchor="middle" fill="#333333">{}</text>
</svg>"##,
        width / 2.0,
        height - 9.0,
        esc(note)
    );
}

/// Renders the figure as an SVG document: panels side by side with shared scales, dashed thin
/// training curves (`class="train"`), bold test curves (`class="test"`), a legend per panel.
pub fn to_svg(fig: &Figure) -> String {
    let (y0, y1) = y_range(&fig.panels);
    // The x axis ends at the last iteration, as in the paper (0 to 6.4 for 64k iterations).
    let last = fig
        .panels
        .iter()
        .flat_map(|p| &p.series)
        .flat_map(|s| s.train.iter().chain(&s.test).map(|p| p.0))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let (unit, x_label) = x_unit(last);
    let in_units = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        pts.iter().map(|&(x, y)| (x / unit, y)).collect()
    };
    let (mut s, width, height) = page(fig.panels.len(), &fig.title);
    for (i, panel) in fig.panels.iter().enumerate() {
        let f = Frame::new(i, (0.0, last / unit), (y0, y1));
        f.open(&mut s, &panel.title, x_label, "error (%)");
        // Curves: training first so the bold test curves are drawn on top.
        for (class, style) in [
            ("train", "stroke-width=\"1\" stroke-dasharray=\"5,3\""),
            ("test", "stroke-width=\"2.5\""),
        ] {
            for ser in &panel.series {
                let pts = if class == "train" {
                    &ser.train
                } else {
                    &ser.test
                };
                if !pts.is_empty() {
                    let style = format!("stroke=\"{}\" {style}", esc(&ser.color));
                    f.polyline(&mut s, class, &in_units(pts), &style);
                }
            }
        }
        // One legend entry per depth (bold swatch as in the paper).
        let entries: Vec<(&str, String)> = panel
            .series
            .iter()
            .map(|ser| {
                let style = format!("stroke=\"{}\" stroke-width=\"2.5\"", esc(&ser.color));
                (ser.label.as_str(), style)
            })
            .collect();
        f.legend(&mut s, &entries, Corner::TopRight);
        s += "</g>\n";
    }
    close(
        &mut s,
        width,
        height,
        "dashed lines: training error; bold lines: test error",
    );
    s
}

/// One line of a [`LineFigure`]: (x, y) points, solid or dashed.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    pub color: String,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

/// A panel of a [`LineFigure`] with its axis labels.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePanel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
}

/// Panels of plain lines side by side with shared scales, in Figure 6's style (Figure 7: layer
/// response std against layer index).
#[derive(Debug, Clone, PartialEq)]
pub struct LineFigure {
    pub title: String,
    pub panels: Vec<LinePanel>,
    /// The line under the panels.
    pub note: String,
}

fn lerp(a: (f64, f64), b: (f64, f64), t: f64) -> (f64, f64) {
    (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
}

/// Renders a [`LineFigure`]: x from 0 to the largest x, y from 0 to a round value above the
/// largest y; one `class="line"` polyline per line (dashed ones thinner), a legend per panel in
/// the corner the lines cross least.
pub fn lines_to_svg(fig: &LineFigure) -> String {
    let points = || {
        fig.panels
            .iter()
            .flat_map(|p| &p.lines)
            .flat_map(|l| &l.points)
            .filter(|p| p.0.is_finite() && p.1.is_finite())
    };
    let x1 = points().map(|p| p.0).fold(0.0f64, f64::max).max(1.0);
    let y_max = points().map(|p| p.1).fold(0.0f64, f64::max);
    let y1 = if y_max > 0.0 {
        let step = nice_step(y_max / 4.0);
        (y_max / step).ceil() * step
    } else {
        1.0
    };
    let style = |l: &Line| {
        let dash = if l.dashed {
            "stroke-width=\"1.5\" stroke-dasharray=\"6,3\""
        } else {
            "stroke-width=\"2\""
        };
        format!("stroke=\"{}\" {dash}", esc(&l.color))
    };
    let (mut s, width, height) = page(fig.panels.len(), &fig.title);
    for (i, panel) in fig.panels.iter().enumerate() {
        let f = Frame::new(i, (0.0, x1), (0.0, y1));
        f.open(&mut s, &panel.title, &panel.x_label, &panel.y_label);
        for l in &panel.lines {
            f.polyline(&mut s, "line", &l.points, &style(l));
        }
        let entries: Vec<(&str, String)> = panel
            .lines
            .iter()
            .map(|l| (l.label.as_str(), style(l)))
            .collect();
        // Line points sampled densely enough that a segment through the box counts too.
        let dense: Vec<(f64, f64)> = panel
            .lines
            .iter()
            .flat_map(|l| l.points.windows(2))
            .flat_map(|w| (0..8).map(move |k| lerp(w[0], w[1], k as f64 / 8.0)))
            .collect();
        let corner = f.free_corner(entries.len(), &dense);
        f.legend(&mut s, &entries, corner);
        s += "</g>\n";
    }
    close(&mut s, width, height, &fig.note);
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
        // 300 iterations are plotted in iterations: round labels.
        assert_eq!(x_unit(300.0), (1.0, "iter."));
        assert_eq!(x_unit(64_000.0), (1e4, "iter. (1e4)"));
        let labels: Vec<String> = ticks(0.0, 300.0, 7).into_iter().map(fmt_tick).collect();
        assert_eq!(labels, ["0", "50", "100", "150", "200", "250", "300"]);
        assert_eq!(fmt_tick(2.5), "2.5");
    }

    #[test]
    fn long_titles_wrap_inside_the_page_and_push_the_panels_down() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(
            wrap("averyveryverylongword x", 4),
            ["averyveryverylongword", "x"]
        );
        let mut fig = figure(8.0);
        let short = to_svg(&fig);
        assert_eq!(short.matches(r#"class="title""#).count(), 1);
        fig.title = "NOT a reproduction: schedule compressed to 180 iterations (the paper: \
                     600000); recipe imagewoof_resnet18 instead of the paper's; more words to be \
                     sure that it needs a third line of its own at this width"
            .into();
        let svg = to_svg(&fig);
        let lines = svg.matches(r#"class="title""#).count();
        assert!(lines >= 2, "{lines} title lines");
        for l in wrap(&fig.title, ((2.0 * PANEL_W - 20.0) / TITLE_CHAR_W) as usize) {
            assert!(
                l.chars().count() as f64 * TITLE_CHAR_W <= 2.0 * PANEL_W - 20.0,
                "{l}"
            );
        }
        let height = |svg: &str| -> f64 {
            let h = svg.split("height=\"").nth(1).unwrap();
            h[..h.find('"').unwrap()].parse().unwrap()
        };
        let extra = TITLE_LINE_H * (lines - 1) as f64;
        assert_eq!(height(&svg), height(&short) + extra);
        assert!(svg.contains(&format!(r#"<g transform="translate(0 {extra})">"#)));
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
