//! A chart as a list of drawing items, written as SVG or rasterised (see `raster`), and the
//! text metrics both share.

use std::fmt::Write;

/// An sRGB colour.
pub type Rgb = [u8; 3];

/// Where a text's `x` sits on the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// The shape of a data marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
}

impl Marker {
    /// The marker of the `i`-th series: the shape tells series apart without colour.
    pub fn nth(i: usize) -> Marker {
        [
            Marker::Circle,
            Marker::Square,
            Marker::Triangle,
            Marker::Diamond,
        ][i % 4]
    }

    /// The corners of a polygonal marker of half-size `r` centred on `(x, y)`.
    pub fn polygon(self, x: f64, y: f64, r: f64) -> Vec<(f64, f64)> {
        match self {
            Marker::Circle | Marker::Square => {
                vec![
                    (x - r, y - r),
                    (x + r, y - r),
                    (x + r, y + r),
                    (x - r, y + r),
                ]
            }
            Marker::Triangle => {
                let r = r * 1.25;
                vec![(x, y - r), (x + r, y + 0.75 * r), (x - r, y + 0.75 * r)]
            }
            Marker::Diamond => {
                let r = r * 1.3;
                vec![(x, y - r), (x + r, y), (x, y + r), (x - r, y)]
            }
        }
    }
}

/// A line of text.
#[derive(Clone, Debug)]
pub(crate) struct Text {
    /// The anchor point: on the baseline, at the start, middle or end of the text. Vertical
    /// text has its baseline at `x` and its anchor at height `y`.
    pub x: f64,
    pub y: f64,
    pub text: String,
    pub size: f64,
    pub anchor: Anchor,
    pub color: Rgb,
    pub bold: bool,
    /// Read bottom to top (rotated by −90°).
    pub vertical: bool,
    /// What the text is (`title`, `tick`, `x-label`, …): a class in SVG.
    pub class: &'static str,
}

impl Text {
    /// Black, regular, horizontal text.
    pub fn new(x: f64, y: f64, text: &str, size: f64, anchor: Anchor, class: &'static str) -> Self {
        Text {
            x,
            y,
            text: text.to_string(),
            size,
            anchor,
            color: [0, 0, 0],
            bold: false,
            vertical: false,
            class,
        }
    }
}

/// One drawing item, in painting order.
#[derive(Clone, Debug)]
pub(crate) enum Item {
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: Option<Rgb>,
        stroke: Option<Rgb>,
    },
    /// An open polyline.
    Path {
        points: Vec<(f64, f64)>,
        color: Rgb,
        width: f64,
        dashed: bool,
    },
    /// The same marker at many points.
    Marks {
        points: Vec<(f64, f64)>,
        shape: Marker,
        r: f64,
        color: Rgb,
    },
    Text(Text),
    /// Items that belong together (a series, a legend entry), with a class and a name.
    Group {
        class: &'static str,
        name: String,
        items: Vec<Item>,
    },
}

/// A picture of `width × height` pixels on a white ground.
#[derive(Clone, Debug)]
pub(crate) struct Scene {
    pub width: f64,
    pub height: f64,
    pub items: Vec<Item>,
}

/// Dash pattern of reference lines (on, off, in pixels).
pub(crate) const DASH: (f64, f64) = (6.0, 4.0);

/// The integer scale of the 8×8 bitmap font that stands for text of `size` pixels.
pub(crate) fn glyph_scale(size: f64) -> usize {
    ((size / 12.0).floor() as usize).max(1)
}

/// An upper bound on the width in pixels of `s` at `size` pixels, in any common sans-serif
/// face (per-character widths at least those of DejaVu Sans, the widest common default) and
/// in the bitmap font of the PNG writer.
pub(crate) fn text_width(s: &str, size: f64, bold: bool) -> f64 {
    let em: f64 = s
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | ' ' => 0.36,
            'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' => 0.45,
            'm' | 'w' | 'M' | 'W' | '%' | '@' | '—' => 1.0,
            '0'..='9' | 'a'..='z' | '+' | '=' | '<' | '>' | '#' | '$' | '_' => 0.66,
            _ => 0.8,
        })
        .sum();
    let factor = if bold { 1.1 } else { 1.0 };
    let bitmap = (s.chars().count() * (8 * glyph_scale(size) + usize::from(bold))) as f64;
    (em * size * factor).max(bitmap)
}

/// Split `s` at spaces into lines no wider than `max` pixels; a word wider than `max` (a long
/// file name) is itself split between characters.
pub(crate) fn wrap(s: &str, size: f64, bold: bool, max: f64) -> Vec<String> {
    let fits = |t: &str| text_width(t, size, bold) <= max;
    let mut lines: Vec<String> = Vec::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        match lines.last_mut() {
            Some(l) if fits(&format!("{l} {word}")) => {
                l.push(' ');
                l.push_str(word);
            }
            _ => {
                let mut piece = String::new();
                for c in word.chars() {
                    if !piece.is_empty() && !fits(&format!("{piece}{c}")) {
                        lines.push(std::mem::take(&mut piece));
                    }
                    piece.push(c);
                }
                lines.push(piece);
            }
        }
    }
    lines
}

fn hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// `s` with the characters XML reserves replaced by entities.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn coords(points: &[(f64, f64)]) -> String {
    let v: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    v.join(" ")
}

impl Item {
    /// The item moved by `(dx, dy)` pixels.
    pub fn translated(mut self, dx: f64, dy: f64) -> Item {
        let shift = |p: &mut Vec<(f64, f64)>| p.iter_mut().for_each(|q| *q = (q.0 + dx, q.1 + dy));
        match &mut self {
            Item::Rect { x, y, .. } => (*x, *y) = (*x + dx, *y + dy),
            Item::Path { points, .. } | Item::Marks { points, .. } => shift(points),
            Item::Text(t) => (t.x, t.y) = (t.x + dx, t.y + dy),
            Item::Group { items, .. } => {
                *items = std::mem::take(items)
                    .into_iter()
                    .map(|i| i.translated(dx, dy))
                    .collect()
            }
        }
        self
    }
}

impl Scene {
    /// The scene as an SVG document.
    pub fn to_svg(&self) -> String {
        let (w, h) = (self.width, self.height);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"DejaVu Sans, Verdana, sans-serif\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        for item in &self.items {
            write_item(&mut s, item);
        }
        s.push_str("</svg>\n");
        s
    }
}

fn write_item(s: &mut String, item: &Item) {
    match item {
        Item::Rect {
            x,
            y,
            w,
            h,
            fill,
            stroke,
        } => {
            let fill = fill.map_or("none".to_string(), hex);
            let stroke = stroke.map_or(String::new(), |c| format!(" stroke=\"{}\"", hex(c)));
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{fill}\"{stroke}/>"
            );
        }
        Item::Path {
            points,
            color,
            width,
            dashed,
        } => {
            let dash = if *dashed {
                format!(" stroke-dasharray=\"{} {}\"", DASH.0, DASH.1)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\"{dash} stroke-linejoin=\"round\" points=\"{}\"/>",
                hex(*color),
                coords(points)
            );
        }
        Item::Marks {
            points,
            shape,
            r,
            color,
        } => {
            let _ = writeln!(s, "<g class=\"marks\" fill=\"{}\">", hex(*color));
            for &(x, y) in points {
                let _ = match shape {
                    Marker::Circle => {
                        writeln!(s, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\"/>")
                    }
                    _ => writeln!(
                        s,
                        "<polygon points=\"{}\"/>",
                        coords(&shape.polygon(x, y, *r))
                    ),
                };
            }
            s.push_str("</g>\n");
        }
        Item::Text(t) => {
            let anchor = match t.anchor {
                Anchor::Start => "start",
                Anchor::Middle => "middle",
                Anchor::End => "end",
            };
            let place = if t.vertical {
                format!("transform=\"translate({:.1},{:.1}) rotate(-90)\"", t.x, t.y)
            } else {
                format!("x=\"{:.1}\" y=\"{:.1}\"", t.x, t.y)
            };
            let weight = if t.bold { " font-weight=\"bold\"" } else { "" };
            let _ = writeln!(
                s,
                "<text class=\"{}\" {place} font-size=\"{}\" text-anchor=\"{anchor}\" fill=\"{}\"{weight}>{}</text>",
                t.class,
                t.size,
                hex(t.color),
                escape(&t.text)
            );
        }
        Item::Group { class, name, items } => {
            let _ = writeln!(s, "<g class=\"{class}\" data-name=\"{}\">", escape(name));
            for i in items {
                write_item(s, i);
            }
            s.push_str("</g>\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_width_bounds_both_fonts() {
        // DejaVu Sans advances (em): 'm' 0.974, 'W' 0.989, 'a' 0.613, digits 0.636.
        assert!(text_width("m", 12.0, false) >= 0.974 * 12.0);
        assert!(text_width("0123456789", 12.0, false) >= 6.36 * 12.0);
        // The bitmap font: 8 pixels a character at 12 px, 16 at 24 px.
        assert!(text_width("iiii", 12.0, false) >= 32.0);
        assert!(text_width("ab", 24.0, false) >= 32.0);
        assert!(text_width("ab", 12.0, true) >= 18.0);
    }

    #[test]
    fn wrap_keeps_lines_within_the_width() {
        let s = "Toy benchmark: KL of the samples to the target after 1000 training steps";
        let lines = wrap(s, 12.0, false, 200.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.join(" "), s);
        assert!(lines.iter().all(|l| text_width(l, 12.0, false) <= 200.0));
        let path = "/a/very/long/path/to/a/file/of/points/that/does/not/fit.txt";
        let lines = wrap(path, 12.0, false, 100.0);
        assert_eq!(lines.concat(), path);
        assert!(lines.iter().all(|l| text_width(l, 12.0, false) <= 100.0));
    }
}
