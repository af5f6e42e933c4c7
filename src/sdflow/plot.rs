//! The scatter plot of target vs generated 2-D points (see [`crate::plot::ScatterChart`]).

use crate::error::Result;
use crate::plot::ScatterChart;

/// An SVG scatter plot of the first two coordinates of `target` (light, underneath) and
/// `generated` (dark, on top), row-major with dimension `d ≥ 2`, on equal axes, with ticks,
/// axis labels and a legend.
pub fn scatter_svg(target: &[f32], generated: &[f32], d: usize, title: &str) -> Result<String> {
    ScatterChart::from_rows(title, target, generated, d)?.to_svg()
}
