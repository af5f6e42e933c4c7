//! Scatter plots of generated points over a target sample, on equal axes.

use super::axis::Axis;
use super::frame::{self, Frame, Texts};
use super::scene::{Item, Marker, Rgb, Scene};
use crate::error::{Error, Result};

/// Target points: light, drawn first.
pub const TARGET_COLOR: [u8; 3] = [150, 196, 224];
/// Generated points: dark and saturated, drawn over the target.
pub const SAMPLE_COLOR: [u8; 3] = [213, 94, 0];

/// A scatter plot of generated points (dark) over a target sample (light), with both axes
/// on one scale so that shapes are not distorted. Non-finite points are left out.
#[derive(Clone, Debug, PartialEq)]
pub struct ScatterChart {
    /// What the picture shows.
    pub title: String,
    /// A second line under the title (settings, scores with their scale).
    pub subtitle: Option<String>,
    /// Label of the horizontal axis.
    pub x_label: String,
    /// Label of the vertical axis.
    pub y_label: String,
    /// Legend name and points of the target sample.
    pub target: (String, Vec<(f64, f64)>),
    /// Legend name and points of the generated sample.
    pub samples: (String, Vec<(f64, f64)>),
    /// Width of the picture in pixels; the plot area is square.
    pub width: f64,
}

outputs!(ScatterChart);

impl ScatterChart {
    /// A chart of the first two coordinates of row-major points of dimension `d ≥ 2`: the
    /// target rows and the generated rows, 600 pixels wide.
    pub fn from_rows(title: &str, target: &[f32], generated: &[f32], d: usize) -> Result<Self> {
        if d < 2 || !target.len().is_multiple_of(d) || !generated.len().is_multiple_of(d) {
            return Err(Error::Shape(format!(
                "a scatter plot needs points of dimension ≥ 2 and whole rows (d = {d}, {} and {} \
                 values)",
                target.len(),
                generated.len()
            )));
        }
        let pts = |s: &[f32]| -> Vec<(f64, f64)> {
            s.chunks(d).map(|p| (p[0] as f64, p[1] as f64)).collect()
        };
        let (x_label, y_label) = if d == 2 {
            (
                "first coordinate".to_string(),
                "second coordinate".to_string(),
            )
        } else {
            (
                format!("coordinate 1 of {d}"),
                format!("coordinate 2 of {d}"),
            )
        };
        Ok(Self {
            title: title.into(),
            subtitle: None,
            x_label: format!("{x_label} (data units)"),
            y_label: format!("{y_label} (data units)"),
            target: ("target".into(), pts(target)),
            samples: ("generated".into(), pts(generated)),
            width: 600.0,
        })
    }

    /// Set the line under the title.
    pub fn subtitle(mut self, s: impl Into<String>) -> Self {
        self.subtitle = Some(s.into());
        self
    }

    /// Set the legend names of the target and the generated points.
    pub fn names(mut self, target: impl Into<String>, samples: impl Into<String>) -> Self {
        self.target.0 = target.into();
        self.samples.0 = samples.into();
        self
    }

    fn scene(&self) -> Result<Scene> {
        let finite = |s: &[(f64, f64)]| -> Vec<(f64, f64)> {
            s.iter()
                .copied()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect()
        };
        let (t, g) = (finite(&self.target.1), finite(&self.samples.1));
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in t.iter().chain(&g) {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (-1.0, 1.0, -1.0, 1.0);
        }
        // One span for both axes, 6 % wider than the data.
        let half = 0.53 * (x1 - x0).max(y1 - y0).max(1e-9);
        let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        let x_axis = Axis::exact(cx - half, cx + half);
        let y_axis = Axis::exact(cy - half, cy + half);
        let entries = vec![
            entry(&self.target.0, t.len(), TARGET_COLOR),
            entry(&self.samples.0, g.len(), SAMPLE_COLOR),
        ];
        let texts = Texts {
            title: &self.title,
            subtitle: self.subtitle.as_deref(),
            note: None,
            x_label: &self.x_label,
            y_label: &self.y_label,
        };
        let mut f = Frame::layout(self.width, 0.0, &texts, x_axis, y_axis, entries, true)?;
        for (name, pts, color, r) in [
            (&self.target.0, &t, TARGET_COLOR, 2.0),
            (&self.samples.0, &g, SAMPLE_COLOR, 1.5),
        ] {
            let marks = Item::Marks {
                points: pts.iter().map(|&p| f.at(p)).collect(),
                shape: Marker::Circle,
                r,
                color,
            };
            f.data.push(Item::Group {
                class: "points",
                name: name.clone(),
                items: vec![marks],
            });
        }
        Ok(f.finish())
    }
}

/// A legend entry: a large dot of the set's colour, its name and its size.
fn entry(name: &str, n: usize, color: Rgb) -> (Item, f64) {
    let dot = Item::Marks {
        points: vec![(5.0, 0.0)],
        shape: Marker::Circle,
        r: 4.5,
        color,
    };
    frame::legend_entry(name, &format!("{name} ({n} points)"), vec![dot], 10.0)
}
