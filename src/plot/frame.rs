//! The frame every chart shares: title, subtitle and note above, the plot area with its grid,
//! ticks and axis labels, and the legend below. Margins are measured from the text they hold.

use super::axis::{label_stride, Axis};
use super::scene::{text_width, wrap, Anchor, Item, Rgb, Scene, Text};
use crate::error::{Error, Result};

/// Outer padding in pixels.
pub(crate) const PAD: f64 = 12.0;
/// Font sizes: title, axis labels and legend, tick labels and notes.
pub(crate) const TITLE: f64 = 16.0;
pub(crate) const BODY: f64 = 12.0;
pub(crate) const SMALL: f64 = 11.0;
/// The narrowest chart with room for its axes.
const MIN_WIDTH: f64 = 200.0;
/// Length of a tick mark outside the frame.
const TICK: f64 = 5.0;
/// Height of a legend row.
const LEGEND_ROW: f64 = 20.0;
/// Gap between legend entries in a row.
const LEGEND_GAP: f64 = 22.0;

const GREY: Rgb = [70, 70, 70];
const GRID: Rgb = [228, 228, 228];

/// The words of a chart.
pub(crate) struct Texts<'a> {
    pub title: &'a str,
    pub subtitle: Option<&'a str>,
    /// A short note at the top left of the plot ("lower is better").
    pub note: Option<&'a str>,
    pub x_label: &'a str,
    pub y_label: &'a str,
}

/// A laid-out chart: the plot area's place, its axes, and the items drawn so far.
pub(crate) struct Frame {
    width: f64,
    height: f64,
    left: f64,
    top: f64,
    plot_w: f64,
    plot_h: f64,
    x_axis: Axis,
    y_axis: Axis,
    under: Vec<Item>,
    /// The chart's own items (series, points, reference lines), drawn over the grid.
    pub data: Vec<Item>,
    legend: Vec<Item>,
}

fn line_height(size: f64) -> f64 {
    size * 1.3
}

fn text(x: f64, y: f64, s: &str, size: f64, anchor: Anchor, class: &'static str) -> Text {
    Text::new(x, y, s, size, anchor, class)
}

/// A legend entry: the `swatch` items (drawn around the origin, `swatch_w` wide) and the
/// `label` after them, grouped under the series' `name`; with the entry's width.
pub(crate) fn legend_entry(
    name: &str,
    label: &str,
    mut swatch: Vec<Item>,
    swatch_w: f64,
) -> (Item, f64) {
    let x = swatch_w + 6.0;
    swatch.push(Item::Text(text(
        x,
        0.35 * BODY,
        label,
        BODY,
        Anchor::Start,
        "legend-label",
    )));
    let group = Item::Group {
        class: "legend-entry",
        name: name.to_string(),
        items: swatch,
    };
    (group, x + text_width(label, BODY, false))
}

/// The middle of the pixel row or column that holds `v`: 1-pixel lines there stay sharp.
fn crisp(v: f64) -> f64 {
    v.floor() + 0.5
}

impl Frame {
    /// Lay out a chart of `width` pixels (and `height`, grown where the text needs it; with
    /// `square`, the plot area is square and the height follows from the width). `legend`
    /// holds one entry per series, each drawn from its own origin at the middle left of its
    /// swatch, with its width; none when empty.
    pub fn layout(
        width: f64,
        height: f64,
        texts: &Texts,
        x_axis: Axis,
        y_axis: Axis,
        legend: Vec<(Item, f64)>,
        square: bool,
    ) -> Result<Frame> {
        if !(MIN_WIDTH..=1e5).contains(&width) || !(0.0..=1e5).contains(&height) {
            return Err(Error::InvalidArgument(format!(
                "a chart must be {MIN_WIDTH} to 100000 pixels wide and at most 100000 high \
                 (got {width} × {height})"
            )));
        }
        let inner = width - 2.0 * PAD;
        let title = wrap(texts.title, TITLE, true, inner);
        let subtitle = texts
            .subtitle
            .map_or(Vec::new(), |s| wrap(s, BODY, false, inner));
        let note_h = texts.note.map_or(0.0, |_| line_height(SMALL));
        let top = PAD
            + title.len() as f64 * line_height(TITLE)
            + subtitle.len() as f64 * line_height(BODY)
            + note_h
            + 10.0;
        // Legend rows: entries flow left to right and wrap at the inner width.
        let mut rows: Vec<Vec<(Item, f64)>> = Vec::new();
        let mut used = f64::INFINITY;
        for (item, w) in legend {
            if used + LEGEND_GAP + w > inner {
                rows.push(Vec::new());
                used = -LEGEND_GAP;
            }
            used += LEGEND_GAP + w;
            rows.last_mut().expect("a row was pushed").push((item, w));
        }
        let x_label = wrap(texts.x_label, BODY, false, inner);
        let legend_h = if rows.is_empty() {
            0.0
        } else {
            8.0 + rows.len() as f64 * LEGEND_ROW
        };
        let bottom = TICK
            + 4.0
            + line_height(SMALL)
            + 4.0
            + x_label.len() as f64 * line_height(BODY)
            + legend_h
            + PAD;
        let widths = |a: &Axis| -> Vec<f64> {
            a.ticks
                .iter()
                .map(|t| text_width(&t.1, SMALL, false))
                .collect()
        };
        let (xw, yw) = (widths(&x_axis), widths(&y_axis));
        let y_tick_w = yw.iter().copied().fold(0.0, f64::max);
        let right = PAD + xw.last().map_or(0.0, |w| w / 2.0);
        let left_for = |lines: usize| {
            let l = PAD + lines as f64 * line_height(BODY) + 6.0 + y_tick_w + 4.0 + TICK;
            l.max(PAD + xw.first().map_or(0.0, |w| w / 2.0))
        };
        let plot_h_for = |left: f64| {
            if square {
                width - left - right
            } else {
                (height - top - bottom).max(200.0)
            }
        };
        let y_label = wrap(texts.y_label, BODY, false, 0.95 * plot_h_for(left_for(1)));
        let left = left_for(y_label.len());
        let (plot_w, plot_h) = (width - left - right, plot_h_for(left));
        let height = top + plot_h + bottom;

        let mut f = Frame {
            width,
            height,
            left,
            top,
            plot_w,
            plot_h,
            x_axis,
            y_axis,
            under: Vec::new(),
            data: Vec::new(),
            legend: Vec::new(),
        };
        let mut y = PAD;
        for l in &title {
            let t = text(width / 2.0, y + TITLE, l, TITLE, Anchor::Middle, "title");
            f.under.push(Item::Text(Text { bold: true, ..t }));
            y += line_height(TITLE);
        }
        for l in &subtitle {
            let t = text(width / 2.0, y + BODY, l, BODY, Anchor::Middle, "subtitle");
            f.under.push(Item::Text(t));
            y += line_height(BODY);
        }
        if let Some(n) = texts.note {
            let t = text(left, top - 8.0, n, SMALL, Anchor::Start, "note");
            f.under.push(Item::Text(Text { color: GREY, ..t }));
        }
        f.axes(&xw, &x_label, &y_label);
        let mut y = top + plot_h + bottom - PAD - legend_h + 8.0 + LEGEND_ROW / 2.0;
        for row in rows {
            let row_w: f64 = row.iter().map(|e| e.1 + LEGEND_GAP).sum::<f64>() - LEGEND_GAP;
            let mut x = PAD + (inner - row_w) / 2.0;
            for (item, w) in row {
                f.legend.push(item.translated(x, y));
                x += w + LEGEND_GAP;
            }
            y += LEGEND_ROW;
        }
        Ok(f)
    }

    /// Grid, frame, ticks with their labels, and the axis labels.
    fn axes(&mut self, xw: &[f64], x_label: &[String], y_label: &[String]) {
        let (l, t, r, b) = (self.left, self.top, self.right(), self.top + self.plot_h);
        let xs: Vec<(f64, String)> = self
            .x_axis
            .ticks
            .iter()
            .map(|(v, s)| (self.x_px(*v), s.clone()))
            .collect();
        let ys: Vec<(f64, String)> = self
            .y_axis
            .ticks
            .iter()
            .map(|(v, s)| (self.y_px(*v), s.clone()))
            .collect();
        let x_pos: Vec<f64> = xs.iter().map(|p| p.0).collect();
        let x_stride = label_stride(&x_pos, xw, 10.0);
        let y_pos: Vec<f64> = ys.iter().rev().map(|p| p.0).collect();
        let y_stride = label_stride(&y_pos, &vec![SMALL * 1.2; ys.len()], 4.0);
        let line = |points, color, width| Item::Path {
            points,
            color,
            width,
            dashed: false,
        };
        for (i, (px, label)) in xs.iter().enumerate() {
            let px = crisp(*px);
            self.under.push(line(vec![(px, t), (px, b)], GRID, 1.0));
            self.under
                .push(line(vec![(px, b), (px, b + TICK)], GREY, 1.0));
            if i % x_stride == 0 {
                let y = b + TICK + 4.0 + SMALL;
                let t = text(px, y, label, SMALL, Anchor::Middle, "tick");
                self.under.push(Item::Text(t));
            }
        }
        for (i, (py, label)) in ys.iter().rev().enumerate() {
            let py = crisp(*py);
            self.under.push(line(vec![(l, py), (r, py)], GRID, 1.0));
            self.under
                .push(line(vec![(l - TICK, py), (l, py)], GREY, 1.0));
            if i % y_stride == 0 {
                let x = l - TICK - 4.0;
                let y = py + 0.35 * SMALL;
                let t = text(x, y, label, SMALL, Anchor::End, "tick");
                self.under.push(Item::Text(t));
            }
        }
        self.under.push(Item::Rect {
            x: crisp(l),
            y: crisp(t),
            w: (r - l).round(),
            h: (b - t).round(),
            fill: None,
            stroke: Some(GREY),
        });
        // Centred under the plot, unless that would push its widest line off the picture.
        let widest = x_label
            .iter()
            .map(|s| text_width(s, BODY, false))
            .fold(0.0, f64::max);
        let half = (widest / 2.0).min(self.width / 2.0 - PAD);
        let x = (l + self.plot_w / 2.0).clamp(PAD + half, self.width - PAD - half);
        let mut y = b + TICK + 4.0 + line_height(SMALL) + 4.0;
        for s in x_label {
            y += line_height(BODY);
            let t = text(x, y - 0.3 * BODY, s, BODY, Anchor::Middle, "x-label");
            self.under.push(Item::Text(t));
        }
        let mut x = PAD;
        for s in y_label {
            x += line_height(BODY);
            let mid = t + self.plot_h / 2.0;
            let label = text(x - 0.3 * BODY, mid, s, BODY, Anchor::Middle, "y-label");
            self.under.push(Item::Text(Text {
                vertical: true,
                ..label
            }));
        }
    }

    /// The pixel position of the data point `p`.
    pub fn at(&self, p: (f64, f64)) -> (f64, f64) {
        (self.x_px(p.0), self.y_px(p.1))
    }

    pub fn x_px(&self, x: f64) -> f64 {
        self.left + self.x_axis.frac(x) * self.plot_w
    }

    pub fn y_px(&self, y: f64) -> f64 {
        self.top + (1.0 - self.y_axis.frac(y)) * self.plot_h
    }

    pub fn left(&self) -> f64 {
        self.left
    }

    pub fn right(&self) -> f64 {
        self.left + self.plot_w
    }

    pub fn top(&self) -> f64 {
        self.top
    }

    /// The finished picture: grid and labels, the data, the legend.
    pub fn finish(self) -> Scene {
        let mut items = self.under;
        items.extend(self.data);
        if !self.legend.is_empty() {
            items.push(Item::Group {
                class: "legend",
                name: String::new(),
                items: self.legend,
            });
        }
        Scene {
            width: self.width,
            height: self.height.ceil(),
            items,
        }
    }
}
