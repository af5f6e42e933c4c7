//! A hand-written SVG scatter plot of target vs generated 2-D points.

use std::fmt::Write;

use crate::error::{Error, Result};

/// An SVG scatter plot of the first two coordinates of `target` (grey) and `generated` (red),
/// row-major with dimension `d ≥ 2`, on a shared square frame.
pub fn scatter_svg(target: &[f32], generated: &[f32], d: usize, title: &str) -> Result<String> {
    if d < 2 || !target.len().is_multiple_of(d) || !generated.len().is_multiple_of(d) {
        return Err(Error::Shape(format!(
            "a scatter plot needs points of dimension ≥ 2 (got d = {d})"
        )));
    }
    let pts = |s: &[f32]| -> Vec<(f32, f32)> {
        s.chunks(d)
            .map(|p| (p[0], p[1]))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    };
    let (t, g) = (pts(target), pts(generated));
    let all = t.iter().chain(g.iter());
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &(x, y) in all {
        lo = lo.min(x).min(y);
        hi = hi.max(x).max(y);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        lo = -1.0;
        hi = 1.0;
    }
    let pad = 0.05 * (hi - lo).max(1e-6);
    let (lo, hi) = (lo - pad, hi + pad);
    let size = 600.0f32;
    let sx = |v: f32| (v - lo) / (hi - lo) * size;
    let sy = |v: f32| size - (v - lo) / (hi - lo) * size;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#,
        w = size,
        h = size + 30.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let esc = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let _ = writeln!(
        s,
        r#"<text x="8" y="{}" font-family="sans-serif" font-size="14">{esc} — grey: target ({}), red: generated ({})</text>"#,
        size + 20.0,
        t.len(),
        g.len()
    );
    for (set, colour) in [(&t, "#888888"), (&g, "#d62728")] {
        let _ = writeln!(s, r#"<g fill="{colour}" fill-opacity="0.5">"#);
        for &(x, y) in set.iter() {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="1.5"/>"#,
                sx(x),
                sy(y)
            );
        }
        let _ = writeln!(s, "</g>");
    }
    let _ = writeln!(s, "</svg>");
    Ok(s)
}
