//! An SVG line plot of a training history: train and validation loss per epoch, linear or
//! log-scale y axis, ticks with labels on both axes, axis titles and a legend. The document is
//! self-contained (no scripts, no external fonts or styles) so browsers, Inkscape and librsvg
//! all draw it the same.

use std::fmt::Write;

use crate::error::{Result, invalid};
use crate::train::EpochRecord;

const W: f64 = 640.0;
const H: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 50.0;
const TRAIN_COLOUR: &str = "#1f77b4";
const VALID_COLOUR: &str = "#d62728";

/// "Nice" tick values (1, 2 or 5 times a power of ten) covering lo..hi, about `want` of them.
pub(crate) fn nice_ticks(lo: f64, hi: f64, want: usize) -> Vec<f64> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / want.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    // The 1-2-5 step whose number of intervals is nearest to `want`.
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .min_by(|a, b| ((span / a) - want as f64).abs().total_cmp(&((span / b) - want as f64).abs()))
        .unwrap_or(mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A number for a tick label: short, no trailing zeros.
pub(crate) fn label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.0e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// The y axis: value to pixel, and its ticks.
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn new(values: &[f64], log: bool) -> Axis {
        let (mut lo, mut hi) =
            values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        if log {
            let (l, h) = (lo.log10(), hi.log10());
            let pad = ((h - l) * 0.05).max(0.02);
            lo = 10f64.powf(l - pad);
            hi = 10f64.powf(h + pad);
        } else {
            let pad = ((hi - lo) * 0.05).max(hi.abs().max(1e-12) * 0.02);
            lo -= pad;
            hi += pad;
        }
        Axis { lo, hi, log }
    }
    fn t(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
    fn y(&self, v: f64) -> f64 {
        TOP + (1.0 - self.t(v)) * (H - TOP - BOTTOM)
    }
    fn ticks(&self) -> Vec<f64> {
        if !self.log {
            return nice_ticks(self.lo, self.hi, 6);
        }
        let (l, h) = (self.lo.log10(), self.hi.log10());
        if h - l >= 1.5 {
            // Whole decades, thinned to at most 8.
            let every = ((h.floor() - l.ceil()) / 7.0).ceil().max(1.0) as i64;
            (l.ceil() as i64..=h.floor() as i64).filter(|k| k % every == 0).map(|k| 10f64.powi(k as i32)).collect()
        } else {
            // Less than two decades: 1, 2 and 5 times powers of ten, or plain nice ticks.
            let mut t: Vec<f64> = (l.floor() as i32..=h.ceil() as i32)
                .flat_map(|k| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k)))
                .filter(|&v| v >= self.lo && v <= self.hi)
                .collect();
            if t.len() < 3 {
                t = nice_ticks(self.lo, self.hi, 5).into_iter().filter(|&v| v > 0.0).collect();
            }
            t
        }
    }
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The SVG document plotting `history`: one polyline of train loss with a point per epoch,
/// and one of validation loss where it was measured. `log_scale` needs positive losses.
pub fn history_svg(history: &[EpochRecord], log_scale: bool, title: &str) -> Result<String> {
    if history.is_empty() {
        return Err(invalid!("the history is empty: train first"));
    }
    // (epoch, loss) of the epochs where the loss is finite.
    let series = |loss: fn(&EpochRecord) -> f64| -> Vec<(usize, f64)> {
        history.iter().enumerate().map(|(i, r)| (i + 1, loss(r))).filter(|p| p.1.is_finite()).collect()
    };
    let (train, valid) = (series(|r| r.train_loss), series(|r| r.valid_loss));
    let all: Vec<f64> = train.iter().chain(&valid).map(|p| p.1).collect();
    if all.is_empty() {
        return Err(invalid!("no epoch of the history has a finite loss"));
    }
    if log_scale && let Some(v) = all.iter().find(|&&v| v <= 0.0) {
        return Err(invalid!("a log scale needs positive losses, and the history holds {v}"));
    }
    let ya = Axis::new(&all, log_scale);
    let n = history.len();
    // Points stay 12 pixels clear of the axes.
    let inset = 12.0;
    let plot_w = W - LEFT - RIGHT - 2.0 * inset;
    let x = |e: f64| {
        if n == 1 { LEFT + inset + plot_w / 2.0 } else { LEFT + inset + (e - 1.0) / (n as f64 - 1.0) * plot_w }
    };
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#, W / 2.0, escape(title));
    // Grid lines and y ticks.
    let _ = writeln!(s, r##"<g class="y-ticks" stroke="#ddd">"##);
    let yt = ya.ticks();
    for &v in &yt {
        let y = ya.y(v);
        let _ = writeln!(s, r#"<line x1="{x0}" y1="{y:.2}" x2="{x1}" y2="{y:.2}"/>"#);
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r#"<g class="y-labels" text-anchor="end">"#);
    for &v in &yt {
        let _ = writeln!(s, r#"<text x="{}" y="{:.2}">{}</text>"#, x0 - 6.0, ya.y(v) + 4.0, label(v));
    }
    let _ = writeln!(s, "</g>");
    // x ticks: epochs, whole numbers only.
    let xt: Vec<f64> = if n <= 12 {
        (1..=n).map(|e| e as f64).collect()
    } else {
        nice_ticks(1.0, n as f64, 8).into_iter().filter(|v| v.fract() == 0.0 && *v >= 1.0).collect()
    };
    let _ = writeln!(s, r#"<g class="x-ticks" stroke="black">"#);
    for &e in &xt {
        let _ = writeln!(s, r#"<line x1="{0:.2}" y1="{y1}" x2="{0:.2}" y2="{1}"/>"#, x(e), y1 + 5.0);
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r#"<g class="x-labels" text-anchor="middle">"#);
    for &e in &xt {
        let _ = writeln!(s, r#"<text x="{:.2}" y="{}">{}</text>"#, x(e), y1 + 18.0, e as u64);
    }
    let _ = writeln!(s, "</g>");
    // Axes and their titles.
    let _ = writeln!(s, r#"<path d="M{x0},{y0} V{y1} H{x1}" fill="none" stroke="black"/>"#);
    let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle">epoch</text>"#, (x0 + x1) / 2.0, H - 12.0);
    let ytitle = if log_scale { "loss (log scale)" } else { "loss" };
    let _ = writeln!(
        s,
        r#"<text transform="translate(16,{0}) rotate(-90)" text-anchor="middle">{ytitle}</text>"#,
        (y0 + y1) / 2.0
    );
    // The series.
    let mut legend = vec![("train loss", TRAIN_COLOUR, &train)];
    if !valid.is_empty() {
        legend.push(("validation loss", VALID_COLOUR, &valid));
    }
    for (name, colour, pts) in &legend {
        let p: Vec<String> = pts.iter().map(|&(e, v)| format!("{:.2},{:.2}", x(e as f64), ya.y(v))).collect();
        let _ = writeln!(
            s,
            r#"<polyline class="{}" points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            name.replace(' ', "-"),
            p.join(" ")
        );
        if pts.len() <= 60 {
            let _ = writeln!(s, r#"<g fill="{colour}">"#);
            for &(e, v) in pts.iter() {
                let _ = writeln!(s, r#"<circle cx="{:.2}" cy="{:.2}" r="2.5"/>"#, x(e as f64), ya.y(v));
            }
            let _ = writeln!(s, "</g>");
        }
    }
    // Legend, top right inside the plot.
    let lw = 130.0;
    let lh = 8.0 + 18.0 * legend.len() as f64;
    let (lx, ly) = (x1 - lw - 8.0, y0 + 8.0);
    let _ = writeln!(s, r#"<g class="legend">"#);
    let _ = writeln!(s, r##"<rect x="{lx}" y="{ly}" width="{lw}" height="{lh}" fill="white" stroke="#999"/>"##);
    for (i, (name, colour, _)) in legend.iter().enumerate() {
        let yy = ly + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="2"/>"#,
            lx + 8.0,
            yy - 4.0,
            lx + 32.0,
            yy - 4.0
        );
        let _ = writeln!(s, r#"<text x="{}" y="{yy}">{name}</text>"#, lx + 38.0);
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, "</svg>");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        assert_eq!(nice_ticks(0.0, 1.0, 5).len(), 6);
        assert_eq!(nice_ticks(1.0, 10.0, 8), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        assert_eq!(label(0.25), "0.25");
        assert_eq!(label(100.0), "100");
        assert_eq!(label(1e-5), "1e-5");
    }
}
