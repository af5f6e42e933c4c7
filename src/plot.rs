//! Small dependency-free SVG charts (loss curves, KL against K).

use crate::error::{Error, Result};

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#7f7f7f", "#9467bd", "#ff7f0e",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A line chart of named series of `(x, y)` points with a logarithmic y axis (and a
/// logarithmic x axis when x spans more than a factor of 10). Non-positive or non-finite
/// values are dropped; an error when nothing is left to draw.
pub fn line_chart_svg(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<String> {
    chart(title, xlabel, ylabel, series, true)
}

/// A line chart of named series of `(x, y)` points with linear x and y axes (for loss curves,
/// whose values span less than a decade). Non-finite points are dropped; an error when
/// nothing is left to draw.
pub fn line_chart_svg_linear(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<String> {
    chart(title, xlabel, ylabel, series, false)
}

/// "Nice" tick positions covering `[lo, hi]`: steps of 1, 2 or 5 times a power of ten.
fn linear_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let a = (lo / step).floor() * step;
    let mut b = (hi / step).ceil() * step;
    if b <= a {
        b = a + step;
    }
    let n = ((b - a) / step).round() as usize;
    let ticks = (0..=n).map(|i| a + i as f64 * step).collect();
    (a, b, ticks)
}

fn chart(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log: bool,
) -> Result<String> {
    let keep = |x: f64, y: f64| x.is_finite() && y.is_finite() && (!log || (x > 0.0 && y > 0.0));
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .filter(|&(x, y)| keep(x, y))
        .collect();
    if pts.is_empty() {
        return Err(Error::InvalidArgument("nothing to plot".into()));
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in &pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let logx = log && x1 / x0 > 10.0;
    let fx = |x: f64| if logx { x.ln() } else { x };
    let (ly0, ly1, yticks) = if log {
        let (a, b) = (
            (y0.ln() / std::f64::consts::LN_10).floor(),
            (y1.ln() / std::f64::consts::LN_10)
                .ceil()
                .max((y0.ln() / std::f64::consts::LN_10).floor() + 1.0),
        );
        let ticks = (a as i32..=b as i32).map(|e| e as f64).collect();
        (a, b, ticks)
    } else {
        linear_ticks(y0, y1)
    };
    let (w, h, ml, mr, mt, mb) = (720.0, 440.0, 80.0, 170.0, 40.0, 60.0);
    let sx = |x: f64| {
        let (a, b) = (fx(x0), fx(x1));
        ml + if b > a { (fx(x) - a) / (b - a) } else { 0.5 } * (w - ml - mr)
    };
    let fy = |y: f64| if log { y.log10() } else { y };
    let sy = |y: f64| mt + (1.0 - (fy(y) - ly0) / (ly1 - ly0)) * (h - mt - mb);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        (w - mr + ml) / 2.0,
        escape(title)
    );
    s += &format!(
        "<rect x=\"{ml}\" y=\"{mt}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n",
        w - ml - mr,
        h - mt - mb
    );
    for &tv in &yticks {
        let (y, label) = if log {
            (sy(10f64.powf(tv)), format!("1e{}", tv as i32))
        } else {
            (sy(tv), format!("{}", (tv * 1e9).round() / 1e9))
        };
        s += &format!("<line x1=\"{ml}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>\n", w - mr, ml - 6.0, y + 4.0);
    }
    let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.dedup();
    let stride = xs.len().div_ceil(12).max(1);
    for x in xs.iter().step_by(stride) {
        s += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{x}</text>\n",
            sx(*x),
            h - mb + 18.0
        );
    }
    s += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
        (w - mr + ml) / 2.0,
        h - 15.0,
        escape(xlabel)
    );
    s += &format!(
        "<text transform=\"translate(18,{}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
        (h - mb + mt) / 2.0,
        escape(ylabel)
    );
    for (i, (name, p)) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let good: Vec<String> = p
            .iter()
            .filter(|&&(x, y)| keep(x, y))
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if !good.is_empty() {
            s += &format!(
                "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>\n",
                good.join(" ")
            );
        }
        let ly = mt + 10.0 + 18.0 * i as f64;
        s += &format!("<line x1=\"{}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{}\">{}</text>\n", w - mr + 10.0, w - mr + 30.0, w - mr + 36.0, ly + 4.0, escape(name));
    }
    s += "</svg>\n";
    Ok(s)
}
