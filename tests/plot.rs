//! The SVG chart writers: well-formed documents that contain every series.

use fisherflow::plot::{line_chart_svg, line_chart_svg_linear};

/// Check that tags open and close in order (self-closing tags included) and that the document
/// is a single `<svg>` element.
fn assert_well_formed(svg: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    let mut roots = 0;
    while let Some(i) = rest.find('<') {
        let j = rest[i..].find('>').expect("unclosed tag") + i;
        let tag = &rest[i + 1..j];
        assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().expect("closing tag without an opening one");
            assert_eq!(open, name.trim(), "mismatched tags");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap().to_string();
            if stack.is_empty() {
                roots += 1;
            }
            stack.push(name);
        } else if stack.is_empty() {
            roots += 1;
        }
        // Text between tags must not contain an unescaped '&' (other than entities).
        let text_end = rest[j + 1..].find('<').map_or(rest.len(), |k| k + j + 1);
        let text = &rest[j + 1..text_end];
        for (p, _) in text.match_indices('&') {
            assert!(
                ["&amp;", "&lt;", "&gt;"]
                    .iter()
                    .any(|e| text[p..].starts_with(e)),
                "unescaped '&' in {text:?}"
            );
        }
        rest = &rest[j + 1..];
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    assert_eq!(roots, 1, "one root element");
    assert!(svg.trim_start().starts_with("<svg"));
}

/// The coordinates of every polyline, in document order.
fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
    svg.match_indices("<polyline")
        .map(|(i, _)| {
            let s = &svg[i..];
            let a = s.find("points=\"").unwrap() + 8;
            let b = s[a..].find('"').unwrap() + a;
            s[a..b]
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

fn loss_like(n: usize) -> Vec<(f64, f64)> {
    (1..=n)
        .map(|i| (50.0 * i as f64, 3.0 + 2.0 / i as f64))
        .collect()
}

#[test]
fn linear_chart_is_well_formed_and_contains_the_series() {
    let pts = loss_like(40);
    let series = vec![
        ("loss & co <train>".to_string(), pts.clone()),
        ("flat".to_string(), vec![(50.0, 4.0), (2000.0, 4.0)]),
    ];
    let svg = line_chart_svg_linear("Loss <curve>", "step", "loss", &series).unwrap();
    assert_well_formed(&svg);
    assert!(svg.contains("loss &amp; co &lt;train&gt;"));
    assert!(svg.contains("Loss &lt;curve&gt;"));
    let lines = polylines(&svg);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].len(), pts.len());
    // Linear axes: x screen positions are affine in the step, and a lower loss is drawn lower
    // on the page (larger y).
    let l = &lines[0];
    let dx0 = l[1].0 - l[0].0;
    for w in l.windows(2) {
        assert!((w[1].0 - w[0].0 - dx0).abs() < 0.15, "x is not linear");
        assert!(w[1].1 >= w[0].1, "a decreasing loss must go down the page");
    }
    // The flat series is horizontal and spans the whole x range.
    let f = &lines[1];
    assert_eq!(f[0].1, f[1].1);
    assert!((f[0].0 - l[0].0).abs() < 0.15 && (f[1].0 - l[l.len() - 1].0).abs() < 0.15);
    // The y grid shows linear tick labels that bracket the data (3.05 .. 5).
    assert!(!svg.contains(">1e0<"));
    let labels: Vec<f64> = svg
        .match_indices("text-anchor=\"end\">")
        .filter_map(|(i, m)| {
            let s = &svg[i + m.len()..];
            s[..s.find('<').unwrap()].parse().ok()
        })
        .collect();
    assert!(labels.len() >= 3, "{labels:?}");
    let lo = labels.iter().cloned().fold(f64::MAX, f64::min);
    let hi = labels.iter().cloned().fold(f64::MIN, f64::max);
    assert!(lo <= 3.05 && hi >= 5.0, "{labels:?}");
}

#[test]
fn linear_chart_keeps_zero_and_negative_values_log_chart_drops_them() {
    let pts = vec![(0.0, -1.0), (1.0, 0.0), (2.0, 1.5), (3.0, f64::NAN)];
    let series = vec![("s".to_string(), pts)];
    let lin = line_chart_svg_linear("t", "x", "y", &series).unwrap();
    assert_well_formed(&lin);
    assert_eq!(polylines(&lin)[0].len(), 3);
    let log = line_chart_svg("t", "x", "y", &series).unwrap();
    assert_well_formed(&log);
    assert_eq!(polylines(&log)[0].len(), 1);
    assert!(log.contains(">1e0<"));
}

#[test]
fn charts_without_points_are_errors() {
    let none = vec![("s".to_string(), vec![(1.0, f64::NAN)])];
    assert!(line_chart_svg_linear("t", "x", "y", &none).is_err());
    assert!(line_chart_svg_linear("t", "x", "y", &[]).is_err());
    let neg = vec![("s".to_string(), vec![(1.0, -2.0)])];
    assert!(line_chart_svg("t", "x", "y", &neg).is_err());
}

#[test]
fn single_point_chart_is_finite() {
    let one = vec![("s".to_string(), vec![(100.0, 2.5)])];
    let svg = line_chart_svg_linear("t", "x", "y", &one).unwrap();
    assert_well_formed(&svg);
    let p = polylines(&svg);
    assert!(p[0][0].0.is_finite() && p[0][0].1.is_finite());
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
}

/// `fisherflow train --loss-curve` writes one point per `--log-every` interval.
#[test]
fn train_writes_the_loss_curve() {
    let Some(exe) = option_env!("CARGO_BIN_EXE_fisherflow") else {
        return; // built without the command-line feature
    };
    let dir = std::env::temp_dir().join(format!("ff-loss-curve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg_path = dir.join("loss.svg");
    let out = std::process::Command::new(exe)
        .args(["train", "--data", "toy:L=2,K=3", "--cpu"])
        .args([
            "--steps",
            "6",
            "--log-every",
            "2",
            "--batch",
            "8",
            "--hidden",
            "8",
        ])
        .args(["--eval-samples", "0", "--out"])
        .arg(dir.join("m.safetensors"))
        .arg("--loss-curve")
        .arg(&svg_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_well_formed(&svg);
    let lines = polylines(&svg);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].len(), 3, "one point per --log-every interval");
    assert!(svg.contains(">step<") && svg.contains(">loss<"));
    std::fs::remove_dir_all(&dir).ok();
}
