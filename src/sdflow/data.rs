//! Seeded 2-D toy targets and a reader for point files (one point a line).

use std::f64::consts::PI;

pub use crate::rng::Rng;

use crate::error::{Error, Result};

/// Names accepted by [`toy_target`].
pub const TOY_TARGETS: [&str; 4] = ["ring8", "moons", "checkerboard", "swissroll"];

/// `n` seeded samples (row-major `[n, 2]`) of a named toy target:
/// - `ring8`: 8 Gaussians of std 0.1 centred on the circle of radius 2;
/// - `moons`: two interleaved half circles of radius 1 (noise std 0.05), centred;
/// - `checkerboard`: uniform on the 8 dark cells of a 4×4 board of unit cells on [-2, 2]²;
/// - `swissroll`: the spiral t(cos t, sin t)/5, t ∈ [1.5π, 4.5π], noise std 0.05.
pub fn toy_target(name: &str, n: usize, seed: u64) -> Result<Vec<f32>> {
    if n == 0 {
        return Err(Error::InvalidArgument(
            "a target needs at least one point".into(),
        ));
    }
    let mut r = Rng::new(seed);
    let mut out = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let (x, y) = match name {
            "ring8" => {
                let a = 2.0 * PI * r.below(8) as f64 / 8.0;
                (
                    2.0 * a.cos() + 0.1 * r.normal(),
                    2.0 * a.sin() + 0.1 * r.normal(),
                )
            }
            "moons" => {
                let t = PI * r.uniform();
                let (x, y) = if r.below(2) == 0 {
                    (t.cos(), t.sin())
                } else {
                    (1.0 - t.cos(), 0.5 - t.sin())
                };
                (x - 0.5 + 0.05 * r.normal(), y - 0.25 + 0.05 * r.normal())
            }
            "checkerboard" => {
                let cell = r.below(8);
                let row = cell / 2;
                let col = 2 * (cell % 2) + (row % 2);
                (
                    col as f64 - 2.0 + r.uniform(),
                    row as f64 - 2.0 + r.uniform(),
                )
            }
            "swissroll" => {
                let t = 1.5 * PI * (1.0 + 2.0 * r.uniform());
                (
                    t * t.cos() / 5.0 + 0.05 * r.normal(),
                    t * t.sin() / 5.0 + 0.05 * r.normal(),
                )
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown target {name:?}; expected one of {} or a file path",
                    TOY_TARGETS.join(", ")
                )))
            }
        };
        out.push(x as f32);
        out.push(y as f32);
    }
    Ok(out)
}

/// Parse points, one a line, coordinates separated by whitespace and/or commas. Blank lines
/// and lines starting with `#` are skipped. Returns the row-major values and d. `source`
/// names the input in error messages, which give the line number.
pub fn parse_points(text: &str, source: &str) -> Result<(Vec<f32>, usize)> {
    let mut vals = Vec::new();
    let mut d = 0usize;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let s = line.trim();
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        let mut count = 0;
        for tok in s.split(|c: char| c == ',' || c.is_whitespace()) {
            if tok.is_empty() {
                continue;
            }
            let v: f32 = tok
                .parse()
                .map_err(|_| Error::Parse(format!("{source}:{lineno}: {tok:?} is not a number")))?;
            if !v.is_finite() {
                return Err(Error::Parse(format!(
                    "{source}:{lineno}: {tok:?} is not finite"
                )));
            }
            vals.push(v);
            count += 1;
        }
        if count == 0 {
            return Err(Error::Parse(format!(
                "{source}:{lineno}: no coordinates on this line"
            )));
        }
        if d == 0 {
            d = count;
        } else if count != d {
            return Err(Error::Parse(format!(
                "{source}:{lineno}: {count} coordinates, but earlier lines have {d}"
            )));
        }
    }
    if d == 0 {
        return Err(Error::Parse(format!("{source}: no points found")));
    }
    super::score::check_dim(d)?;
    Ok((vals, d))
}

/// Read a point file with [`parse_points`].
pub fn read_points(path: &std::path::Path) -> Result<(Vec<f32>, usize)> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
    parse_points(&text, &path.display().to_string())
}
