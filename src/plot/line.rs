//! Line charts: named series of `(x, y)` points, labelled horizontal reference lines, a
//! legend when there is more than one series.

use super::axis::{Axis, Scale};
use super::frame::{self, Frame, Texts, SMALL};
use super::scene::{text_width, Anchor, Item, Marker, Rgb, Scene, Text};
use crate::error::{Error, Result};

/// Colours of data series (Okabe and Ito's colour-blind-safe palette).
const COLORS: [Rgb; 6] = [
    [0, 114, 178],
    [213, 94, 0],
    [0, 158, 115],
    [204, 121, 167],
    [230, 159, 0],
    [86, 180, 233],
];
/// Colour of reference series and reference lines.
const REFERENCE: Rgb = [90, 90, 90];
/// Series with at most this many points get a marker at each point.
const MARKERS_UP_TO: usize = 30;

/// One named series of a [`LineChart`].
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// `(x, y)` points, drawn in this order.
    pub points: Vec<(f64, f64)>,
    /// A reference (a floor, a baseline) rather than a result: drawn dashed and grey.
    pub reference: bool,
}

/// A line chart. Points and reference lines that the axes cannot show (non-finite values,
/// values ≤ 0 on a log axis) are left out; a chart with no point left is an error.
///
/// ```
/// use fisherflow::plot::{LineChart, Scale};
/// let svg = LineChart::new("KL against K", "K (categories)", "KL (nats)")
///     .scales(Scale::Log, Scale::Log)
///     .series("model", vec![(5.0, 0.01), (20.0, 0.03)])
///     .reference_series("exact-sample floor", vec![(5.0, 0.001), (20.0, 0.004)])
///     .reference_line("uniform noise", 0.3)
///     .lower_is_better()
///     .to_svg()
///     .unwrap();
/// assert!(svg.contains("uniform noise") && svg.contains("lower is better"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    /// What the chart shows (with a single series, what that series is).
    pub title: String,
    /// A second line under the title: settings, scale, the source of the data.
    pub subtitle: Option<String>,
    /// The x axis's label, with its unit.
    pub x_label: String,
    /// The y axis's label, with its unit.
    pub y_label: String,
    /// Scale of the x axis.
    pub x_scale: Scale,
    /// Scale of the y axis.
    pub y_scale: Scale,
    /// Say "lower is better" above the plot.
    pub lower_is_better: bool,
    /// The series, drawn in order (later on top).
    pub series: Vec<Series>,
    /// Labelled horizontal lines at a fixed y (a noise baseline, a target).
    pub references: Vec<(String, f64)>,
    /// Width of the picture in pixels.
    pub width: f64,
    /// Height of the picture in pixels (grown when the text needs it).
    pub height: f64,
}

outputs!(LineChart);

impl LineChart {
    /// An empty chart with linear axes, 720 × 440 pixels.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Self {
            title: title.into(),
            subtitle: None,
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            lower_is_better: false,
            series: Vec::new(),
            references: Vec::new(),
            width: 720.0,
            height: 440.0,
        }
    }

    /// Set the scales of the x and y axes.
    pub fn scales(mut self, x: Scale, y: Scale) -> Self {
        (self.x_scale, self.y_scale) = (x, y);
        self
    }

    /// Set the line under the title.
    pub fn subtitle(mut self, s: impl Into<String>) -> Self {
        self.subtitle = Some(s.into());
        self
    }

    /// Say "lower is better".
    pub fn lower_is_better(mut self) -> Self {
        self.lower_is_better = true;
        self
    }

    /// Add a result series.
    pub fn series(mut self, name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        self.series.push(Series {
            name: name.into(),
            points,
            reference: false,
        });
        self
    }

    /// Add a reference series (dashed, grey): a floor or a baseline that varies along x.
    pub fn reference_series(mut self, name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        self.series.push(Series {
            name: name.into(),
            points,
            reference: true,
        });
        self
    }

    /// Add a labelled horizontal line at `y`.
    pub fn reference_line(mut self, label: impl Into<String>, y: f64) -> Self {
        self.references.push((label.into(), y));
        self
    }

    fn scene(&self) -> Result<Scene> {
        let (sx, sy) = (self.x_scale, self.y_scale);
        let drawable: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| {
                s.points
                    .iter()
                    .copied()
                    .filter(|&(x, y)| sx.accepts(x) && sy.accepts(y))
                    .collect()
            })
            .collect();
        let refs: Vec<&(String, f64)> =
            self.references.iter().filter(|r| sy.accepts(r.1)).collect();
        let mut xs: Vec<f64> = drawable.iter().flatten().map(|p| p.0).collect();
        if xs.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "chart {:?}: no point can be drawn (every value is missing, not finite, or not \
                 positive on a log axis)",
                self.title
            )));
        }
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let x_axis = if xs.len() <= 10 {
            Axis::at_values(sx, &xs)
        } else {
            Axis::nice(sx, xs[0], xs[xs.len() - 1])
        };
        let ys = drawable.iter().flatten().map(|p| p.1);
        let ys = ys.chain(refs.iter().map(|r| r.1));
        let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
        let y_axis = Axis::nice(sy, y0, y1);

        let marked: Vec<bool> = drawable.iter().map(|p| p.len() <= MARKERS_UP_TO).collect();
        let entries: Vec<(Item, f64)> = if self.series.len() >= 2 {
            (0..self.series.len())
                .map(|i| self.legend_entry(i, marked[i]))
                .collect()
        } else {
            Vec::new()
        };
        let texts = Texts {
            title: &self.title,
            subtitle: self.subtitle.as_deref(),
            note: self.lower_is_better.then_some("lower is better"),
            x_label: &self.x_label,
            y_label: &self.y_label,
        };
        let mut f = Frame::layout(
            self.width,
            self.height,
            &texts,
            x_axis,
            y_axis,
            entries,
            false,
        )?;
        for (i, s) in self.series.iter().enumerate() {
            let pts: Vec<(f64, f64)> = drawable[i].iter().map(|&p| f.at(p)).collect();
            let (color, width) = self.style(i);
            let mut items = Vec::new();
            if pts.len() >= 2 {
                items.push(Item::Path {
                    points: pts.clone(),
                    color,
                    width,
                    dashed: s.reference,
                });
            }
            if marked[i] && !pts.is_empty() {
                items.push(Item::Marks {
                    points: pts,
                    shape: Marker::nth(i),
                    r: 3.5,
                    color,
                });
            }
            let class = if s.reference {
                "reference-series"
            } else {
                "series"
            };
            f.data.push(Item::Group {
                class,
                name: s.name.clone(),
                items,
            });
        }
        self.reference_lines(&mut f, &refs);
        Ok(f.finish())
    }

    /// Colour and line width of series `i`: data series take the palette in order.
    fn style(&self, i: usize) -> (Rgb, f64) {
        if self.series[i].reference {
            (REFERENCE, 1.5)
        } else {
            let k = self.series[..i].iter().filter(|s| !s.reference).count();
            (COLORS[k % COLORS.len()], 2.0)
        }
    }

    fn legend_entry(&self, i: usize, marked: bool) -> (Item, f64) {
        let s = &self.series[i];
        let (color, width) = self.style(i);
        let mut items = vec![Item::Path {
            points: vec![(0.0, 0.0), (24.0, 0.0)],
            color,
            width,
            dashed: s.reference,
        }];
        if marked {
            items.push(Item::Marks {
                points: vec![(12.0, 0.0)],
                shape: Marker::nth(i),
                r: 3.5,
                color,
            });
        }
        frame::legend_entry(&s.name, &s.name, items, 24.0)
    }

    /// Dashed horizontal lines with their labels right-aligned inside the plot, above the line
    /// (below it when that would collide with the previous label or leave the plot).
    fn reference_lines(&self, f: &mut Frame, refs: &[&(String, f64)]) {
        let mut taken: Vec<(f64, f64)> = Vec::new();
        for (label, y) in refs {
            let py = f.y_px(*y);
            let (right, h) = (f.right() - 4.0, SMALL * 1.25);
            let w = text_width(label, SMALL, false);
            let overlaps = |top: f64| taken.iter().any(|&(a, b)| top < b && top + h > a);
            let above = py - 3.0 - h;
            let top = if above >= f.top() && !overlaps(above) {
                above
            } else {
                py + 3.0
            };
            taken.push((top, top + h));
            let items = vec![
                Item::Path {
                    points: vec![(f.left(), py), (f.right(), py)],
                    color: REFERENCE,
                    width: 1.5,
                    dashed: true,
                },
                Item::Rect {
                    x: right - w - 2.0,
                    y: top,
                    w: w + 4.0,
                    h,
                    fill: Some([255, 255, 255]),
                    stroke: None,
                },
                Item::Text(Text::new(
                    right,
                    top + h - 0.3 * SMALL,
                    label,
                    SMALL,
                    Anchor::End,
                    "reference-label",
                )),
            ];
            f.data.push(Item::Group {
                class: "reference",
                name: label.clone(),
                items,
            });
        }
    }
}
