//! An SVG scatter plot of 2-D codes (a network's 2-unit code, a VAE's posterior means), one
//! small circle per point, coloured by label with a legend, as the latent-space plots of the
//! Keras and matplotlib tutorials: axes with "nice" ticks, grid lines, axis titles, a title.
//!
//! Structure (what a reader or a test can rely on): one `<g class="points" data-label="L"
//! fill="#rrggbb">` group per distinct label (ascending; one group with `data-label="none"`
//! without labels), holding one `<circle>` per point of that label in data order; the plot area
//! is the `<rect class="plot-area">`, and every circle lies inside it. Label `L` of rank `i`
//! among the distinct labels (ascending) is drawn in [`PALETTE`]`[i % 20]`.

use std::fmt::Write;

use super::svg::{escape, label, nice_ticks};
use crate::error::{Error, Result, invalid, shape};
use crate::tensor::Matrix;

/// Twenty distinct colours: matplotlib's tab10, then ten darker or more saturated companions.
pub const PALETTE: [&str; 20] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#ad494a", "#637939", "#e7ba52", "#7b4173", "#3182bd", "#31a354", "#756bb1", "#636363", "#e6550d",
];
/// Most points in one plot (an SVG of a million circles is about 40 MB).
pub const MAX_POINTS: usize = 1_000_000;
/// Most legend lines drawn; further labels are summed up in one last line.
const LEGEND_LINES: usize = 20;

const W: f64 = 640.0;
const H: f64 = 520.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 130.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 50.0;

/// The colour of the label of rank `rank` among the distinct labels (ascending).
pub fn colour(rank: usize) -> &'static str {
    PALETTE[rank % PALETTE.len()]
}

/// The plot area as (x0, y0, x1, y1) in SVG pixels: every point lies inside it.
pub fn plot_area() -> (f64, f64, f64, f64) {
    (LEFT, TOP, W - RIGHT, H - BOTTOM)
}

/// An axis range: min..max of `v` widened 5% each side (a constant: +-1 around it).
fn range(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    let span = hi - lo;
    if span <= 1e-12 * lo.abs().max(1.0) {
        return (lo - 1.0, hi + 1.0);
    }
    (lo - 0.05 * span, hi + 0.05 * span)
}

/// The scatter plot of `codes` (row-major pairs: point i is (codes[2i], codes[2i+1])), coloured
/// by `labels` (one per point; None: one colour, no legend). NaN or infinite codes are
/// NonFinite naming the point; an odd length, or labels of another count, ShapeMismatch; no
/// points or more than [`MAX_POINTS`], InvalidArgument.
pub fn scatter_svg(codes: &[f32], labels: Option<&[i32]>, title: &str) -> Result<String> {
    if !codes.len().is_multiple_of(2) {
        return Err(shape!("{} code values are not pairs: the codes must be 2-D", codes.len()));
    }
    let n = codes.len() / 2;
    if n == 0 {
        return Err(invalid!("no points to plot"));
    }
    if n > MAX_POINTS {
        return Err(invalid!("{n} points are more than {MAX_POINTS} for one plot"));
    }
    if let Some(l) = labels
        && l.len() != n
    {
        return Err(shape!("{} labels for {n} points", l.len()));
    }
    if let Some(i) = codes.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!("codes: point {}, dimension {} is {:?}", i / 2, i % 2, codes[i])));
    }
    let (xlo, xhi) = range(codes.iter().step_by(2).map(|&v| v as f64));
    let (ylo, yhi) = range(codes.iter().skip(1).step_by(2).map(|&v| v as f64));
    let (x0, y0, x1, y1) = plot_area();
    let px = |v: f64| x0 + (v - xlo) / (xhi - xlo) * (x1 - x0);
    let py = |v: f64| y1 - (v - ylo) / (yhi - ylo) * (y1 - y0);
    // Points per distinct label, ascending, each in data order.
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(l) = labels {
        order.sort_by_key(|&i| l[i]);
    }
    let r = if n > 2000 { 1.5 } else { 2.5 };

    let mut s = String::with_capacity(1024 + 40 * n);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        (x0 + x1) / 2.0,
        escape(title)
    );
    let _ = writeln!(
        s,
        r##"<rect class="plot-area" x="{x0}" y="{y0}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        x1 - x0,
        y1 - y0
    );
    // Grid lines, ticks and their labels.
    let xt = nice_ticks(xlo, xhi, 6);
    let yt = nice_ticks(ylo, yhi, 6);
    let _ = writeln!(s, r##"<g class="grid" stroke="#e5e5e5">"##);
    for &v in &xt {
        let _ = writeln!(s, r#"<line x1="{0:.1}" y1="{y0}" x2="{0:.1}" y2="{y1}"/>"#, px(v));
    }
    for &v in &yt {
        let _ = writeln!(s, r#"<line x1="{x0}" y1="{0:.1}" x2="{x1}" y2="{0:.1}"/>"#, py(v));
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r#"<g class="x-labels" text-anchor="middle">"#);
    for &v in &xt {
        let _ = writeln!(s, r#"<text x="{:.1}" y="{}">{}</text>"#, px(v), y1 + 18.0, label(v));
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r#"<g class="y-labels" text-anchor="end">"#);
    for &v in &yt {
        let _ = writeln!(s, r#"<text x="{}" y="{:.1}">{}</text>"#, x0 - 6.0, py(v) + 4.0, label(v));
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle">dimension 1</text>"#, (x0 + x1) / 2.0, H - 12.0);
    let _ = writeln!(
        s,
        r#"<text transform="translate(16,{}) rotate(-90)" text-anchor="middle">dimension 2</text>"#,
        (y0 + y1) / 2.0
    );
    // The points, one group per label.
    let mut legend: Vec<(String, &str)> = Vec::new();
    let mut k = 0;
    while k < n {
        let lab = labels.map(|l| l[order[k]]);
        let end = labels.map_or(n, |l| k + order[k..].iter().take_while(|&&i| l[i] == l[order[k]]).count());
        let c = colour(legend.len());
        let name = lab.map_or("none".to_string(), |v| v.to_string());
        let _ = writeln!(s, r#"<g class="points" data-label="{name}" fill="{c}" fill-opacity="0.75">"#);
        for &i in &order[k..end] {
            let (x, y) = (px(codes[2 * i] as f64), py(codes[2 * i + 1] as f64));
            let _ = writeln!(s, r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}"/>"#);
        }
        let _ = writeln!(s, "</g>");
        legend.push((name, c));
        k = end;
    }
    if labels.is_some() {
        let lines = legend.len().min(LEGEND_LINES);
        let more = legend.len() - lines;
        let (lx, ly) = (x1 + 12.0, y0);
        let lh = 10.0 + 18.0 * (lines + (more > 0) as usize) as f64;
        let _ = writeln!(s, r#"<g class="legend">"#);
        let _ = writeln!(
            s,
            r##"<rect x="{lx}" y="{ly}" width="{}" height="{lh}" fill="white" stroke="#999"/>"##,
            RIGHT - 20.0
        );
        let _ = writeln!(s, r#"<text x="{}" y="{}">label</text>"#, lx + 8.0, ly - 4.0);
        for (j, (name, c)) in legend.iter().take(lines).enumerate() {
            let yy = ly + 18.0 + 18.0 * j as f64;
            let _ = writeln!(s, r#"<circle cx="{}" cy="{}" r="5" fill="{c}"/>"#, lx + 14.0, yy - 4.0);
            let _ = writeln!(s, r#"<text x="{}" y="{yy}">{name}</text>"#, lx + 26.0);
        }
        if more > 0 {
            let yy = ly + 18.0 + 18.0 * lines as f64;
            let _ = writeln!(s, r#"<text x="{}" y="{yy}">+{more} more</text>"#, lx + 8.0);
        }
        let _ = writeln!(s, "</g>");
    }
    let _ = writeln!(s, "</svg>");
    Ok(s)
}

/// [`scatter_svg`] of a matrix of codes (`what` names them in messages), refusing codes that
/// are not 2-D (InvalidArgument): the one check every "plot my codes" call shares.
pub fn codes_scatter_svg(codes: &Matrix, labels: Option<&[i32]>, title: &str, what: &str) -> Result<String> {
    if codes.cols() != 2 {
        return Err(invalid!(
            "{what} has {} code units: a scatter plot needs a 2-D code (build it with 2 code units or latent dimensions)",
            codes.cols()
        ));
    }
    scatter_svg(codes.as_slice(), labels, title)
}
