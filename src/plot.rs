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
    chart(title, xlabel, ylabel, series, true)
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
    chart(title, xlabel, ylabel, series, false)
}

/// "Nice" tick positions covering `[lo, hi]`: steps of 1, 2 or 5 times a power of ten.
fn linear_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let a = (lo / step).floor() * step;
    let mut b = (hi / step).ceil() * step;
    if b <= a {
        b = a + step;
    }
    let n = ((b - a) / step).round() as usize;
    let ticks = (0..=n).map(|i| a + i as f64 * step).collect();
    (a, b, ticks)
}

fn chart(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log: bool,
) -> Result<String> {
    let keep = |x: f64, y: f64| x.is_finite() && y.is_finite() && (!log || (x > 0.0 && y > 0.0));
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .filter(|&(x, y)| keep(x, y))
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
    let logx = log && x1 / x0 > 10.0;
    let fx = |x: f64| if logx { x.ln() } else { x };
    let (ly0, ly1, yticks) = if log {
        let (a, b) = (
            (y0.ln() / std::f64::consts::LN_10).floor(),
            (y1.ln() / std::f64::consts::LN_10)
                .ceil()
                .max((y0.ln() / std::f64::consts::LN_10).floor() + 1.0),
        );
        let ticks = (a as i32..=b as i32).map(|e| e as f64).collect();
        (a, b, ticks)
    } else {
        linear_ticks(y0, y1)
    };
    let (w, h, ml, mr, mt, mb) = (720.0, 440.0, 80.0, 170.0, 40.0, 60.0);
    let sx = |x: f64| {
        let (a, b) = (fx(x0), fx(x1));
        ml + if b > a { (fx(x) - a) / (b - a) } else { 0.5 } * (w - ml - mr)
    };
    let fy = |y: f64| if log { y.log10() } else { y };
    let sy = |y: f64| mt + (1.0 - (fy(y) - ly0) / (ly1 - ly0)) * (h - mt - mb);
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
    for &tv in &yticks {
        let (y, label) = if log {
            (sy(10f64.powf(tv)), format!("1e{}", tv as i32))
        } else {
            (sy(tv), format!("{}", (tv * 1e9).round() / 1e9))
        };
        s += &format!("<line x1=\"{ml}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>\n", w - mr, ml - 6.0, y + 4.0);
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
            .filter(|&&(x, y)| keep(x, y))
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

    /// Paint a filled disc of radius `r` pixels (clipped at the borders).
    pub fn disc(&mut self, cx: f32, cy: f32, r: f32, color: [u8; 3]) {
        let (x0, x1) = (
            (cx - r).floor().max(0.0) as usize,
            (cx + r).ceil().max(0.0) as usize,
        );
        let (y0, y1) = (
            (cy - r).floor().max(0.0) as usize,
            (cy + r).ceil().max(0.0) as usize,
        );
        for y in y0..=y1.min(self.height.saturating_sub(1)) {
            for x in x0..=x1.min(self.width.saturating_sub(1)) {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                if dx * dx + dy * dy <= r * r {
                    let i = (y * self.width + x) * 3;
                    self.rgb[i..i + 3].copy_from_slice(&color);
                }
            }
        }
    }

    /// Encode as PNG (8-bit RGB, zlib "stored" blocks: no compression, no dependency).
    pub fn to_png(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity((self.width * 3 + 1) * self.height);
        for row in self.rgb.chunks(self.width * 3) {
            raw.push(0); // filter: none
            raw.extend_from_slice(row);
        }
        let mut z = vec![0x78, 0x01];
        let mut blocks = raw.chunks(65_535).peekable();
        if blocks.peek().is_none() {
            z.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        }
        while let Some(b) = blocks.next() {
            z.push(u8::from(blocks.peek().is_none()));
            let n = b.len() as u16;
            z.extend_from_slice(&n.to_le_bytes());
            z.extend_from_slice(&(!n).to_le_bytes());
            z.extend_from_slice(b);
        }
        z.extend_from_slice(&adler32(&raw).to_be_bytes());
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

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += x as u32;
            b += a;
        }
        a %= 65_521;
        b %= 65_521;
    }
    (b << 16) | a
}

/// A scatter plot of the first two coordinates of `target` (grey) and `generated` (red)
/// points of dimension `d`, as a PNG of `size × size` pixels.
pub fn scatter_png(target: &[f32], generated: &[f32], d: usize, size: usize) -> Result<Vec<u8>> {
    if d < 2 || !target.len().is_multiple_of(d) || !generated.len().is_multiple_of(d) || size < 16 {
        return Err(Error::Shape(format!(
            "a scatter plot needs points of dimension >= 2 and at least 16 pixels (d = {d}, size = {size})"
        )));
    }
    let finite = |p: &&[f32]| p[0].is_finite() && p[1].is_finite();
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for p in target.chunks(d).chain(generated.chunks(d)).filter(finite) {
        lo = lo.min(p[0]).min(p[1]);
        hi = hi.max(p[0]).max(p[1]);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        (lo, hi) = (-1.0, 1.0);
    }
    let pad = 0.05 * (hi - lo).max(1e-6);
    let (lo, hi) = (lo - pad, hi + pad);
    let s = size as f32;
    let map = |v: f32| (v - lo) / (hi - lo) * s;
    let mut img = Image::new(size, size);
    for (set, color, r) in [
        (target, [150, 150, 150], 2.0),
        (generated, [214, 39, 40], 1.6),
    ] {
        for p in set.chunks(d).filter(finite) {
            img.disc(map(p[0]), s - map(p[1]), r, color);
        }
    }
    Ok(img.to_png())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_and_adler_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn png_has_valid_structure() {
        let png = scatter_png(&[0.0, 0.0, 1.0, 1.0], &[0.5, 0.5], 2, 300).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // Walk the chunks and check every CRC.
        let mut i = 8;
        let mut kinds = Vec::new();
        while i < png.len() {
            let n = u32::from_be_bytes(png[i..i + 4].try_into().unwrap()) as usize;
            let body = &png[i + 4..i + 8 + n];
            let crc = u32::from_be_bytes(png[i + 8 + n..i + 12 + n].try_into().unwrap());
            assert_eq!(crc32(body), crc);
            kinds.push(String::from_utf8_lossy(&body[..4]).to_string());
            i += 12 + n;
        }
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        // 300 rows of 901 bytes need several stored blocks.
        assert!(png.len() > 300 * 901);
        assert!(scatter_png(&[0.0], &[], 1, 100).is_err());
    }

    #[test]
    fn line_chart_has_every_series() {
        let s = line_chart_svg(
            "t",
            "x",
            "y",
            &[
                ("a".into(), vec![(1.0, 0.1), (2.0, 0.01)]),
                ("b".into(), vec![(1.0, 0.5)]),
            ],
        )
        .unwrap();
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains(">a</text>") && s.contains(">b</text>"));
        assert!(line_chart_svg("t", "x", "y", &[("a".into(), vec![(1.0, -1.0)])]).is_err());
    }
}
