//! Reading chart files back: a small SVG parser that checks well-formedness and summarises
//! what a reader would see, and a PNG decoder (the `png` crate, independent of our encoder).

#![allow(dead_code)]

/// An element: its name, attributes, children and direct text.
#[derive(Debug, Default)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
    pub text: String,
}

impl Node {
    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attrs.iter().find(|a| a.0 == k).map(|a| a.1.as_str())
    }

    pub fn num(&self, k: &str) -> f64 {
        let v = self
            .attr(k)
            .unwrap_or_else(|| panic!("<{}> has no {k}", self.name));
        v.parse()
            .unwrap_or_else(|_| panic!("<{}> {k}={v:?} is not a number", self.name))
    }

    /// This node and all below it, in document order.
    pub fn all(&self) -> Vec<&Node> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.all());
        }
        out
    }

    pub fn with_class(&self, class: &str) -> Vec<&Node> {
        self.all()
            .into_iter()
            .filter(|n| n.attr("class") == Some(class))
            .collect()
    }

    pub fn texts(&self, class: &str) -> Vec<String> {
        self.with_class(class)
            .iter()
            .map(|n| n.text.clone())
            .collect()
    }
}

fn unescape(s: &str) -> String {
    for (p, _) in s.match_indices('&') {
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;"]
                .iter()
                .any(|e| s[p..].starts_with(e)),
            "unescaped '&' in {s:?}"
        );
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn attributes(tag: &str) -> (String, Vec<(String, String)>) {
    let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
    let mut rest = tag[name_end..].trim();
    let mut attrs = Vec::new();
    while !rest.is_empty() {
        let eq = rest
            .find("=\"")
            .unwrap_or_else(|| panic!("bad attribute in <{tag}>"));
        let key = rest[..eq].trim().to_string();
        let end = rest[eq + 2..].find('"').expect("unterminated attribute") + eq + 2;
        let value = &rest[eq + 2..end];
        assert!(!value.contains('<'), "'<' in an attribute of <{tag}>");
        attrs.push((key, unescape(value)));
        rest = rest[end + 1..].trim();
    }
    (tag[..name_end].to_string(), attrs)
}

/// Parse an SVG document: tags must nest, text and attributes must be escaped, and there must
/// be exactly one root element, `<svg>`.
pub fn parse_svg(svg: &str) -> Node {
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        assert!(
            rest[..i].trim().is_empty() || stack.len() > 1,
            "text outside the root"
        );
        stack.last_mut().unwrap().text += &unescape(&rest[..i]);
        let j = rest[i..].find('>').expect("unclosed tag") + i;
        let tag = &rest[i + 1..j];
        assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            let node = stack.pop().expect("a closing tag without an opening one");
            assert_eq!(node.name, name.trim(), "mismatched tags");
            stack.last_mut().expect("one root").children.push(node);
        } else if let Some(body) = tag.strip_suffix('/') {
            let (name, attrs) = attributes(body.trim());
            let node = Node {
                name,
                attrs,
                ..Node::default()
            };
            stack.last_mut().unwrap().children.push(node);
        } else {
            let (name, attrs) = attributes(tag);
            stack.push(Node {
                name,
                attrs,
                ..Node::default()
            });
        }
        rest = &rest[j + 1..];
    }
    assert!(rest.trim().is_empty(), "text after the root");
    assert_eq!(stack.len(), 1, "unclosed elements");
    let mut doc = stack.pop().unwrap();
    assert_eq!(doc.children.len(), 1, "one root element");
    let root = doc.children.pop().unwrap();
    assert_eq!(root.name, "svg");
    root
}

/// One series of a line chart as drawn.
#[derive(Debug, PartialEq)]
pub struct Drawn {
    pub name: String,
    /// Points of its polyline (0 without one).
    pub line: usize,
    /// Markers drawn.
    pub markers: usize,
    pub color: String,
}

/// What a reader sees in a chart.
#[derive(Debug)]
pub struct Chart {
    pub width: f64,
    pub height: f64,
    pub title: String,
    pub subtitle: String,
    pub x_label: String,
    pub y_label: String,
    pub notes: Vec<String>,
    pub ticks: Vec<String>,
    pub series: Vec<Drawn>,
    pub reference_series: Vec<Drawn>,
    pub reference_lines: Vec<String>,
    pub legend: Vec<String>,
    /// Scatter plots: the point sets (name, points, colour).
    pub point_sets: Vec<(String, usize, String)>,
}

fn drawn(g: &Node) -> Drawn {
    let line = g.all().into_iter().find(|n| n.name == "polyline");
    let marks = g.with_class("marks");
    Drawn {
        name: g.attr("data-name").unwrap().to_string(),
        line: line.map_or(0, |l| l.attr("points").unwrap().split_whitespace().count()),
        markers: marks.iter().map(|m| m.children.len()).sum(),
        color: line
            .and_then(|l| l.attr("stroke"))
            .or_else(|| marks.first().and_then(|m| m.attr("fill")))
            .unwrap_or("")
            .to_string(),
    }
}

/// Parse `svg` and summarise it; every text must lie inside the picture (judged with 0.6 em
/// a character, about the average advance of a sans-serif face).
pub fn read_chart(svg: &str) -> Chart {
    let root = parse_svg(svg);
    let (w, h) = (root.num("width"), root.num("height"));
    for t in root.all().into_iter().filter(|n| n.name == "text") {
        let size = t.num("font-size");
        let len = 0.6 * size * t.text.chars().count() as f64;
        let (x, y, vertical) = match t.attr("transform") {
            Some(tr) => {
                let inner = &tr[tr.find('(').unwrap() + 1..tr.find(')').unwrap()];
                let (a, b) = inner.split_once(',').unwrap();
                (a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap(), true)
            }
            None => (t.num("x"), t.num("y"), false),
        };
        let (lo, hi) = match t.attr("text-anchor").unwrap_or("start") {
            "middle" => (-len / 2.0, len / 2.0),
            "end" => (-len, 0.0),
            _ => (0.0, len),
        };
        let fits = if vertical {
            x - size >= 0.0 && x <= w && y - hi >= 0.0 && y - lo <= h
        } else {
            x + lo >= 0.0 && x + hi <= w && y - size >= 0.0 && y + 0.3 * size <= h
        };
        assert!(fits, "text {:?} leaves the {w}×{h} picture", t.text);
    }
    let joined = |class: &str| root.texts(class).join(" ");
    let groups = |class: &str| root.with_class(class).into_iter().map(drawn).collect();
    Chart {
        width: w,
        height: h,
        title: joined("title"),
        subtitle: joined("subtitle"),
        x_label: joined("x-label"),
        y_label: joined("y-label"),
        notes: root.texts("note"),
        ticks: root.texts("tick"),
        series: groups("series"),
        reference_series: groups("reference-series"),
        reference_lines: root.texts("reference-label"),
        legend: root.texts("legend-label"),
        point_sets: root
            .with_class("points")
            .iter()
            .map(|g| {
                let marks = &g.with_class("marks")[0];
                (
                    g.attr("data-name").unwrap().to_string(),
                    marks.children.len(),
                    marks.attr("fill").unwrap().to_string(),
                )
            })
            .collect(),
    }
}

/// A decoded PNG: width, height and RGB bytes.
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Picture {
    pub fn count(&self, color: [u8; 3]) -> usize {
        self.rgb.chunks(3).filter(|p| *p == color).count()
    }

    /// Whether every pixel within `margin` of the border is white (nothing was cut off).
    pub fn border_is_white(&self, margin: usize) -> bool {
        (0..self.height).all(|y| {
            (0..self.width).all(|x| {
                let inner = x >= margin
                    && y >= margin
                    && x + margin < self.width
                    && y + margin < self.height;
                let i = (y * self.width + x) * 3;
                inner || self.rgb[i..i + 3] == [255, 255, 255]
            })
        })
    }
}

/// Decode an 8-bit RGB PNG with the `png` crate.
pub fn decode_png(bytes: &[u8]) -> Picture {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut buf).expect("PNG pixel data");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    Picture {
        width: info.width as usize,
        height: info.height as usize,
        rgb: buf,
    }
}

/// `#rrggbb` of a colour.
pub fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}
