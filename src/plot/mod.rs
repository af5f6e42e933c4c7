//! Charts as SVG or PNG: line charts (loss curves, KL against K) and scatter plots.
//!
//! Every chart has a title, labelled axes with ticks, a legend when it has more than one
//! series, markers on series with few points, and labelled reference lines. A chart is laid
//! out once as a list of drawing items (margins measured from the text they hold, with an
//! upper bound on text width) and then written as SVG or rasterised into a PNG (text in an
//! 8×8 bitmap font, deflate by `miniz_oxide`).

/// `to_svg`, `to_png` and `write` for a chart type with a `scene` method.
macro_rules! outputs {
    ($chart:ty) => {
        impl $chart {
            /// The chart as an SVG document.
            pub fn to_svg(&self) -> Result<String> {
                Ok(self.scene()?.to_svg())
            }

            /// The chart as a PNG image.
            pub fn to_png(&self) -> Result<Vec<u8>> {
                Ok(super::raster::rasterize(&self.scene()?).to_png())
            }

            /// Write the chart to `path`: PNG when the name ends in `.png`, SVG otherwise
            /// written atomically ([`crate::data::file::write_atomic`]).
            pub fn write(&self, path: &std::path::Path) -> Result<()> {
                super::write_scene(&self.scene()?, path)
            }
        }
    };
}

mod axis;
mod frame;
mod line;
mod raster;
mod scatter;
mod scene;

use std::path::Path;

pub use axis::Scale;
pub use line::{LineChart, Series};
pub use raster::{crc32, Image};
pub use scatter::{ScatterChart, SAMPLE_COLOR, TARGET_COLOR};

use crate::error::Result;

/// A line chart of named series of `(x, y)` points with a logarithmic y axis (and a
/// logarithmic x axis when x spans more than a factor of 10). Non-positive or non-finite
/// values are dropped; an error when nothing is left to draw.
pub fn line_chart_svg(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<String> {
    let xs = series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
    let xs = xs.filter(|&x| Scale::Log.accepts(x));
    let (lo, hi) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let x_scale = if hi / lo > 10.0 {
        Scale::Log
    } else {
        Scale::Linear
    };
    chart(title, xlabel, ylabel, series)
        .scales(x_scale, Scale::Log)
        .to_svg()
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
    chart(title, xlabel, ylabel, series).to_svg()
}

fn chart(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> LineChart {
    series
        .iter()
        .fold(LineChart::new(title, xlabel, ylabel), |c, (name, pts)| {
            c.series(name.clone(), pts.clone())
        })
}

/// A scatter plot of the first two coordinates of `target` (light) and `generated` (dark)
/// points of dimension `d`, as a PNG `size` pixels wide (at least 200).
pub fn scatter_png(target: &[f32], generated: &[f32], d: usize, size: usize) -> Result<Vec<u8>> {
    let mut c = ScatterChart::from_rows("Generated points over the target", target, generated, d)?;
    c.width = size as f64;
    c.to_png()
}

/// Whether `path` names a PNG file (by its extension, in any case).
pub fn is_png(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

/// Write `scene` to `path` as PNG when the name ends in `.png`, else as SVG.
fn write_scene(scene: &scene::Scene, path: &Path) -> Result<()> {
    let bytes = if is_png(path) {
        raster::rasterize(scene).to_png()
    } else {
        scene.to_svg().into_bytes()
    };
    crate::data::file::write_atomic(path, &bytes, true)
}
