//! The raster writer: an RGB image, anti-aliased shapes, text in an 8×8 bitmap font, and a
//! PNG encoder (deflate by `miniz_oxide`).

use font8x8::legacy::{BASIC_LEGACY, GREEK_LEGACY, LATIN_LEGACY};

use super::scene::{glyph_scale, Anchor, Item, Marker, Rgb, Scene, Text, DASH};

/// An RGB image, row-major, 3 bytes a pixel.
#[derive(Clone, Debug)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

impl Image {
    /// A white image.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            rgb: vec![255; width * height * 3],
        }
    }

    /// Mix `color` into pixel `(x, y)` with weight `alpha`, rounded to quarters: smooth
    /// enough for edges this small, and few enough colours for deflate (ignored outside the
    /// image).
    fn blend(&mut self, x: i64, y: i64, color: Rgb, alpha: f64) {
        let a = (alpha.clamp(0.0, 1.0) * 4.0).round() / 4.0;
        if a == 0.0 || x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let i = (y as usize * self.width + x as usize) * 3;
        for (p, &c) in self.rgb[i..i + 3].iter_mut().zip(&color) {
            *p = (*p as f64 * (1.0 - a) + c as f64 * a).round() as u8;
        }
    }

    /// Visit the pixels whose centres lie within `[x0, x1] × [y0, y1]` (widened by one).
    fn pixels_near(&self, x0: f64, x1: f64, y0: f64, y1: f64) -> impl Iterator<Item = (i64, i64)> {
        let clamp = |v: f64, n: usize| v.max(-1.0).min(n as f64) as i64;
        let (xa, xb) = (
            clamp(x0.floor() - 1.0, self.width),
            clamp(x1.ceil() + 1.0, self.width),
        );
        let (ya, yb) = (
            clamp(y0.floor() - 1.0, self.height),
            clamp(y1.ceil() + 1.0, self.height),
        );
        (ya..=yb).flat_map(move |y| (xa..=xb).map(move |x| (x, y)))
    }

    /// Paint a filled, anti-aliased disc of radius `r` pixels (clipped at the borders).
    pub fn disc(&mut self, cx: f32, cy: f32, r: f32, color: [u8; 3]) {
        let (cx, cy, r) = (cx as f64, cy as f64, r as f64);
        let px: Vec<_> = self.pixels_near(cx - r, cx + r, cy - r, cy + r).collect();
        for (x, y) in px {
            let d = (x as f64 + 0.5 - cx).hypot(y as f64 + 0.5 - cy);
            self.blend(x, y, color, r + 0.5 - d);
        }
    }

    /// An anti-aliased segment of width `2 hw` with round ends.
    fn segment(&mut self, a: (f64, f64), b: (f64, f64), hw: f64, color: Rgb) {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = dx * dx + dy * dy;
        let px: Vec<_> = self
            .pixels_near(
                a.0.min(b.0) - hw,
                a.0.max(b.0) + hw,
                a.1.min(b.1) - hw,
                a.1.max(b.1) + hw,
            )
            .collect();
        for (x, y) in px {
            let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
            let t = if len2 > 0.0 {
                (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let d = (px - a.0 - t * dx).hypot(py - a.1 - t * dy);
            self.blend(x, y, color, hw + 0.5 - d);
        }
    }

    /// A filled convex polygon, anti-aliased by 4 × 4 samples a pixel.
    fn polygon(&mut self, pts: &[(f64, f64)], color: Rgb) {
        let inside = |x: f64, y: f64| {
            let n = pts.len();
            let side = |i: usize| {
                let (a, b) = (pts[i], pts[(i + 1) % n]);
                (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0)
            };
            let s: Vec<f64> = (0..n).map(side).collect();
            s.iter().all(|&v| v >= 0.0) || s.iter().all(|&v| v <= 0.0)
        };
        let (xs, ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
        let fold = |v: &[f64], f: fn(f64, f64) -> f64, init| v.iter().copied().fold(init, f);
        let px: Vec<_> = self
            .pixels_near(
                fold(&xs, f64::min, f64::MAX),
                fold(&xs, f64::max, f64::MIN),
                fold(&ys, f64::min, f64::MAX),
                fold(&ys, f64::max, f64::MIN),
            )
            .collect();
        for (x, y) in px {
            let hits = (0..16)
                .filter(|k| {
                    inside(
                        x as f64 + (k % 4) as f64 / 4.0 + 0.125,
                        y as f64 + (k / 4) as f64 / 4.0 + 0.125,
                    )
                })
                .count();
            self.blend(x, y, color, hits as f64 / 16.0);
        }
    }

    /// Text in the 8×8 bitmap font (characters it lacks are drawn as `?`).
    fn text(&mut self, t: &Text) {
        let s = glyph_scale(t.size) as i64;
        let advance = 8 * s + i64::from(t.bold);
        let n = t.text.chars().count() as i64;
        let start = match t.anchor {
            Anchor::Start => 0,
            Anchor::Middle => n * advance / 2,
            Anchor::End => n * advance,
        };
        let (x0, y0) = (t.x.round() as i64, t.y.round() as i64);
        for (i, c) in t.text.chars().enumerate() {
            let glyph = glyph(c);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8i64 {
                    if bits >> col & 1 == 0 {
                        continue;
                    }
                    for k in 0..s * s + i64::from(t.bold) * s * s {
                        let (dx, dy) = (k % s + (k / (s * s)), (k / s) % s);
                        // Position along the text and relative to the baseline (up < 0).
                        let u = i as i64 * advance + col * s + dx - start;
                        let v = (row as i64 - 7) * s + dy;
                        let (x, y) = if t.vertical {
                            (x0 + v, y0 - u)
                        } else {
                            (x0 + u, y0 + v)
                        };
                        self.blend(x, y, t.color, 1.0);
                    }
                }
            }
        }
    }

    /// Encode as PNG: 8-bit RGB, zlib-compressed. Rows are stored as they are or each with
    /// the filter that makes it smallest by the sum of absolute differences, whichever
    /// deflates better (flat charts favour the first, lines and gradients the second).
    pub fn to_png(&self) -> Vec<u8> {
        let z = [false, true]
            .map(|adaptive| miniz_oxide::deflate::compress_to_vec_zlib(&self.filtered(adaptive), 9))
            .into_iter()
            .min_by_key(Vec::len)
            .expect("two candidates");
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&(self.width as u32).to_be_bytes());
        ihdr.extend_from_slice(&(self.height as u32).to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut png, b"IHDR", &ihdr);
        chunk(&mut png, b"IDAT", &z);
        chunk(&mut png, b"IEND", &[]);
        png
    }
}

impl Image {
    /// The rows, each behind its filter-type byte: 0 (none), or the cheapest filter.
    fn filtered(&self, adaptive: bool) -> Vec<u8> {
        let stride = self.width * 3;
        let mut raw = Vec::with_capacity((stride + 1) * self.height);
        let zero = vec![0u8; stride];
        let mut trial = vec![0u8; stride];
        let cost = |f: &[u8]| {
            f.iter()
                .map(|&b| (b as i8).unsigned_abs() as u64)
                .sum::<u64>()
        };
        for (y, row) in self.rgb.chunks(stride).enumerate() {
            let prev = if y == 0 {
                &zero[..]
            } else {
                &self.rgb[(y - 1) * stride..y * stride]
            };
            let mut best = (0, 0u8);
            if adaptive {
                best = (u64::MAX, 0);
                for kind in 0..5u8 {
                    filter_row(kind, row, prev, &mut trial);
                    best = best.min((cost(&trial), kind));
                }
            }
            filter_row(best.1, row, prev, &mut trial);
            raw.push(best.1);
            raw.extend_from_slice(&trial);
        }
        raw
    }
}

/// The PNG filter `kind` (0 none, 1 sub, 2 up, 3 average, 4 Paeth) of `row` over `prev`.
fn filter_row(kind: u8, row: &[u8], prev: &[u8], out: &mut [u8]) {
    for i in 0..row.len() {
        let a = if i >= 3 { row[i - 3] } else { 0 };
        let (b, c) = (prev[i], if i >= 3 { prev[i - 3] } else { 0 });
        let predicted = match kind {
            0 => 0,
            1 => a,
            2 => b,
            3 => ((a as u16 + b as u16) / 2) as u8,
            _ => {
                let p = a as i16 + b as i16 - c as i16;
                let (pa, pb, pc) = (
                    (p - a as i16).abs(),
                    (p - b as i16).abs(),
                    (p - c as i16).abs(),
                );
                if pa <= pb && pa <= pc {
                    a
                } else if pb <= pc {
                    b
                } else {
                    c
                }
            }
        };
        out[i] = row[i].wrapping_sub(predicted);
    }
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// CRC-32 (IEEE, reflected) as PNG chunks use it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// The 8×8 bitmap of `c` (row by row, least significant bit leftmost), looked up by code
/// point in the font's Basic Latin, Latin-1 and Greek tables; a character outside them is
/// drawn as `?`.
fn glyph(c: char) -> [u8; 8] {
    let c = match c {
        '\u{2013}' | '\u{2014}' | '\u{2212}' => '-',
        '\u{2016}' => '|',
        _ => c,
    };
    let u = c as usize;
    let g = match u {
        0x20..=0x7e => BASIC_LEGACY[u],
        0xa0..=0xff => LATIN_LEGACY[u - 0xa0],
        0x390..=0x3c9 => GREEK_LEGACY[u - 0x390],
        _ => [0; 8],
    };
    if g == [0; 8] && !c.is_whitespace() {
        BASIC_LEGACY[usize::from(b'?')]
    } else {
        g
    }
}

/// Points `points` cut into the "on" pieces of the dash pattern.
fn dashes(points: &[(f64, f64)]) -> Vec<((f64, f64), (f64, f64))> {
    let period = DASH.0 + DASH.1;
    let mut out = Vec::new();
    let mut phase = 0.0;
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        let len = (b.0 - a.0).hypot(b.1 - a.1);
        let at = |t: f64| (a.0 + (b.0 - a.0) * t / len, a.1 + (b.1 - a.1) * t / len);
        let mut t = 0.0;
        while t < len {
            let in_period = (phase + t) % period;
            let (on, rest) = if in_period < DASH.0 {
                (true, DASH.0 - in_period)
            } else {
                (false, period - in_period)
            };
            let end = (t + rest).min(len);
            if on {
                out.push((at(t), at(end)));
            }
            t = end;
        }
        phase += len;
    }
    out
}

/// Paint `scene` into an image of its size.
pub(crate) fn rasterize(scene: &Scene) -> Image {
    let mut img = Image::new(scene.width.ceil() as usize, scene.height.ceil() as usize);
    for item in &scene.items {
        draw(&mut img, item);
    }
    img
}

fn draw(img: &mut Image, item: &Item) {
    match item {
        Item::Rect {
            x,
            y,
            w,
            h,
            fill,
            stroke,
        } => {
            if let Some(c) = fill {
                img.polygon(&[(*x, *y), (x + w, *y), (x + w, y + h), (*x, y + h)], *c);
            }
            if let Some(c) = stroke {
                let p = [(*x, *y), (x + w, *y), (x + w, y + h), (*x, y + h), (*x, *y)];
                for s in p.windows(2) {
                    img.segment(s[0], s[1], 0.5, *c);
                }
            }
        }
        Item::Path {
            points,
            color,
            width,
            dashed,
        } => {
            let pieces = if *dashed {
                dashes(points)
            } else {
                points.windows(2).map(|w| (w[0], w[1])).collect()
            };
            for (a, b) in pieces {
                img.segment(a, b, width / 2.0, *color);
            }
        }
        Item::Marks {
            points,
            shape,
            r,
            color,
        } => {
            for &(x, y) in points {
                match shape {
                    Marker::Circle => img.disc(x as f32, y as f32, *r as f32, *color),
                    _ => img.polygon(&shape.polygon(x, y, *r), *color),
                }
            }
        }
        Item::Text(t) => img.text(t),
        Item::Group { items, .. } => {
            for i in items {
                draw(img, i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn filters_invert() {
        let row: Vec<u8> = (0..30).map(|i| (i * 37 % 256) as u8).collect();
        let prev: Vec<u8> = (0..30).map(|i| (i * 11 % 256) as u8).collect();
        let mut f = vec![0; 30];
        filter_row(1, &row, &prev, &mut f);
        let mut back = f.clone();
        for i in 3..30 {
            back[i] = back[i].wrapping_add(back[i - 3]);
        }
        assert_eq!(back, row);
        filter_row(2, &row, &prev, &mut f);
        let up: Vec<u8> = f
            .iter()
            .zip(&prev)
            .map(|(a, b)| a.wrapping_add(*b))
            .collect();
        assert_eq!(up, row);
    }

    #[test]
    fn dashes_alternate() {
        let d = dashes(&[(0.0, 0.0), (25.0, 0.0)]);
        let spans: Vec<(f64, f64)> = d.iter().map(|(a, b)| (a.0, b.0)).collect();
        assert_eq!(spans, [(0.0, 6.0), (10.0, 16.0), (20.0, 25.0)]);
    }

    #[test]
    fn glyphs_exist_for_labels() {
        for c in "Az09.,-+()²ση|?".chars() {
            assert_ne!(glyph(c), [0; 8], "{c}");
        }
        // Superscript two: a small 2 in the top five rows.
        assert_eq!(glyph('²'), [0x1C, 0x30, 0x18, 0x0C, 0x3C, 0, 0, 0]);
        assert_eq!(glyph(' '), [0; 8]);
        assert_eq!(glyph('\u{2014}'), glyph('-'));
        assert_eq!(glyph('\u{4e00}'), glyph('?'));
    }
}
