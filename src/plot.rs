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
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite() && *x > 0.0 && *y > 0.0)
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
    let logx = x1 / x0 > 10.0;
    let fx = |x: f64| if logx { x.ln() } else { x };
    let (ly0, ly1) = (
        (y0.ln() / std::f64::consts::LN_10).floor(),
        (y1.ln() / std::f64::consts::LN_10)
            .ceil()
            .max((y0.ln() / std::f64::consts::LN_10).floor() + 1.0),
    );
    let (w, h, ml, mr, mt, mb) = (720.0, 440.0, 80.0, 170.0, 40.0, 60.0);
    let sx = |x: f64| {
        let (a, b) = (fx(x0), fx(x1));
        ml + if b > a { (fx(x) - a) / (b - a) } else { 0.5 } * (w - ml - mr)
    };
    let sy = |y: f64| mt + (1.0 - ((y.log10()) - ly0) / (ly1 - ly0)) * (h - mt - mb);
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
    let mut e = ly0 as i32;
    while e as f64 <= ly1 {
        let y = sy(10f64.powi(e));
        s += &format!("<line x1=\"{ml}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">1e{e}</text>\n", w - mr, ml - 6.0, y + 4.0);
        e += 1;
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
            .filter(|(x, y)| x.is_finite() && y.is_finite() && *x > 0.0 && *y > 0.0)
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
