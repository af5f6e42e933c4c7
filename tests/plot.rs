//! The chart writers read back: every chart has its title, axis labels, ticks, series,
//! markers, legend and reference labels, in SVG and in PNG, including one-point series.

#[path = "support/chart.rs"]
mod chart;

use chart::{decode_png, hex, parse_svg, read_chart};
use fisherflow::plot::{
    line_chart_svg, line_chart_svg_linear, scatter_png, LineChart, Scale, ScatterChart,
    SAMPLE_COLOR, TARGET_COLOR,
};

/// The palette's first three colours, as the charts draw series in order.
const BLUE: [u8; 3] = [0, 114, 178];
const VERMILLION: [u8; 3] = [213, 94, 0];
const GREEN: [u8; 3] = [0, 158, 115];

fn kl_chart(ks: &[f64]) -> LineChart {
    let pts = |a: f64| ks.iter().map(|&k| (k, a * k.sqrt())).collect::<Vec<_>>();
    LineChart::new(
        "Toy benchmark: KL against K",
        "K (categories)",
        "KL(samples || target), nats",
    )
    .subtitle("1000 steps, 16384 samples")
    .scales(Scale::Log, Scale::Log)
    .lower_is_better()
    .series("fisher-flow", pts(3e-3))
    .series("fisher-flow+OT", pts(2e-3))
    .series("linear-FM", pts(9e-3))
    .reference_series("exact-sample floor", pts(2e-4))
    .reference_line("uniform noise", 0.3)
}

#[test]
fn a_multi_series_chart_shows_everything_a_reader_needs() {
    let ks = [5.0, 20.0, 80.0, 160.0];
    let c = read_chart(&kl_chart(&ks).to_svg().unwrap());
    assert_eq!(c.title, "Toy benchmark: KL against K");
    assert_eq!(c.subtitle, "1000 steps, 16384 samples");
    assert_eq!(c.x_label, "K (categories)");
    assert_eq!(c.y_label, "KL(samples || target), nats");
    assert_eq!(c.notes, ["lower is better"]);
    // A tick at each K, and decades on the y axis from below the floor to above the noise.
    for k in ["5", "20", "80", "160"] {
        assert!(c.ticks.contains(&k.to_string()), "{:?}", c.ticks);
    }
    for y in ["0.0001", "0.001", "0.01", "0.1", "1"] {
        assert!(c.ticks.contains(&y.to_string()), "{:?}", c.ticks);
    }
    let names: Vec<&str> = c.series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["fisher-flow", "fisher-flow+OT", "linear-FM"]);
    for s in &c.series {
        assert_eq!((s.line, s.markers), (4, 4), "{s:?}");
    }
    let colors: Vec<&str> = c.series.iter().map(|s| s.color.as_str()).collect();
    assert_eq!(colors, [hex(BLUE), hex(VERMILLION), hex(GREEN)]);
    assert_eq!(c.reference_series.len(), 1);
    assert_eq!(c.reference_series[0].name, "exact-sample floor");
    assert_eq!(c.reference_lines, ["uniform noise"]);
    assert_eq!(
        c.legend,
        [
            "fisher-flow",
            "fisher-flow+OT",
            "linear-FM",
            "exact-sample floor"
        ]
    );
}

#[test]
fn one_point_series_are_drawn_as_markers() {
    let c = read_chart(&kl_chart(&[5.0]).to_svg().unwrap());
    assert_eq!(c.series.len(), 3);
    for s in c.series.iter().chain(&c.reference_series) {
        assert_eq!((s.line, s.markers), (0, 1), "{s:?}");
    }
    assert!(c.ticks.contains(&"5".to_string()));
    assert_eq!(c.legend.len(), 4);
    // The PNG shows a marker of each colour.
    let png = decode_png(&kl_chart(&[5.0]).to_png().unwrap());
    for color in [BLUE, VERMILLION, GREEN] {
        assert!(png.count(color) >= 9, "marker {color:?} missing");
    }
}

#[test]
fn a_single_series_has_no_legend_and_long_series_no_markers() {
    let loss: Vec<(f64, f64)> = (1..=200)
        .map(|i| (50.0 * i as f64, 0.4 + 1.0 / i as f64))
        .collect();
    let chart = LineChart::new("Training loss", "training step", "loss")
        .lower_is_better()
        .series("loss", loss);
    let c = read_chart(&chart.to_svg().unwrap());
    assert!(c.legend.is_empty());
    assert_eq!(c.series.len(), 1);
    assert_eq!((c.series[0].line, c.series[0].markers), (200, 0));
    assert!(c.ticks.contains(&"10000".to_string()), "{:?}", c.ticks);
    let png = decode_png(&chart.to_png().unwrap());
    assert_eq!((png.width, png.height), (720, 440));
    assert!(png.count(BLUE) > 200);
    assert!(png.border_is_white(3));
}

#[test]
fn long_titles_and_labels_wrap_inside_the_picture() {
    let long = "A title that goes on and on about the settings of the run, the data, the \
                adapter and the host, far wider than the chart itself";
    let chart = LineChart {
        height: 300.0,
        ..LineChart::new(long, long, "loss")
            .subtitle(long)
            .series(
                "a rather long legend entry number one",
                vec![(1.0, 2.0), (2.0, 3.0)],
            )
            .series("a rather long legend entry number two", vec![(1.0, 2.5)])
            .series("a rather long legend entry number three", vec![(1.5, 2.2)])
    };
    // read_chart fails on any text outside the picture.
    let c = read_chart(&chart.to_svg().unwrap());
    assert_eq!(c.title, long);
    assert_eq!(c.x_label, long);
    assert_eq!(c.ticks[..3], ["1", "1.5", "2"]);
    assert!(
        c.height > 300.0,
        "the picture grows to keep room for the plot"
    );
    let png = decode_png(&chart.to_png().unwrap());
    assert_eq!(png.height as f64, c.height);
    assert!(png.border_is_white(3), "text reaches the edge of the PNG");
}

#[test]
fn reference_lines_stay_inside_the_y_range() {
    // The noise line lies far above the data: the axis must reach it.
    let svg = LineChart::new("t", "x", "y")
        .scales(Scale::Linear, Scale::Log)
        .series("s", vec![(1.0, 0.001), (2.0, 0.002)])
        .reference_line("noise", 5.0)
        .reference_line("not drawable on a log axis", -1.0)
        .to_svg()
        .unwrap();
    let c = read_chart(&svg);
    assert_eq!(c.reference_lines, ["noise"]);
    assert!(c.ticks.contains(&"10".to_string()), "{:?}", c.ticks);
}

#[test]
fn scatter_plots_draw_the_target_under_the_samples() {
    let ring: Vec<f32> = (0..400)
        .flat_map(|i| {
            let a = i as f32 * 0.7;
            [2.0 * a.cos(), 2.0 * a.sin()]
        })
        .collect();
    let samples: Vec<f32> = ring.iter().map(|v| v * 1.1).take(300).collect();
    let chart = ScatterChart::from_rows("Generated over the target", &ring, &samples, 2)
        .unwrap()
        .subtitle("MMD² 0.001")
        .names("target sample", "particles");
    let c = read_chart(&chart.to_svg().unwrap());
    assert_eq!(c.title, "Generated over the target");
    assert_eq!(c.subtitle, "MMD² 0.001");
    assert_eq!(c.x_label, "first coordinate (data units)");
    assert_eq!(c.y_label, "second coordinate (data units)");
    assert_eq!(
        c.point_sets,
        [
            ("target sample".to_string(), 400, hex(TARGET_COLOR)),
            ("particles".to_string(), 150, hex(SAMPLE_COLOR))
        ]
    );
    assert_eq!(
        c.legend,
        ["target sample (400 points)", "particles (150 points)"]
    );
    for t in ["-2", "0", "2"] {
        assert!(c.ticks.contains(&t.to_string()), "{:?}", c.ticks);
    }
    // Equal axes: the same ticks on both.
    let n = c.ticks.len();
    let (mut x, mut y) = (c.ticks[..n / 2].to_vec(), c.ticks[n / 2..].to_vec());
    x.sort();
    y.sort();
    assert_eq!(x, y);
    let png = decode_png(&chart.to_png().unwrap());
    assert_eq!(png.width, 600);
    assert!(png.count(TARGET_COLOR) > 400, "target points missing");
    assert!(png.count(SAMPLE_COLOR) > 150, "samples missing");
    assert!(png.border_is_white(3));
}

#[test]
fn scatter_png_of_rows_is_compressed_and_sized() {
    let t: Vec<f32> = (0..8192).map(|i| ((i * 37) % 101) as f32 / 25.0).collect();
    let g: Vec<f32> = (0..2048).map(|i| ((i * 53) % 97) as f32 / 25.0).collect();
    let bytes = scatter_png(&t, &g, 2, 640).unwrap();
    let png = decode_png(&bytes);
    assert_eq!(png.width, 640);
    assert!(png.height > 640);
    // Stored blocks would take 3 bytes a pixel.
    assert!(
        bytes.len() * 10 < png.width * png.height * 3,
        "{} bytes",
        bytes.len()
    );
    assert!(png.count(TARGET_COLOR) > 0 && png.count(SAMPLE_COLOR) > 0);
    assert!(scatter_png(&t, &g, 1, 600).is_err());
    assert!(scatter_png(&t, &g[..3], 2, 600).is_err());
    assert!(scatter_png(&t, &g, 2, 100).is_err());
}

#[test]
fn scatter_plots_of_higher_dimensions_and_non_finite_points() {
    let t = [0.0, 1.0, 9.0, f32::NAN, 0.0, 5.0, 1.0, 2.0, 3.0];
    let c = read_chart(
        &ScatterChart::from_rows("d = 3", &t, &t[..3], 3)
            .unwrap()
            .to_svg()
            .unwrap(),
    );
    assert_eq!(c.x_label, "coordinate 1 of 3 (data units)");
    assert_eq!(c.point_sets[0].1, 2, "the NaN row is left out");
    assert_eq!(c.point_sets[1].1, 1);
}

#[test]
fn linear_chart_keeps_zero_and_negative_values_log_chart_drops_them() {
    let pts = vec![(0.0, -1.0), (1.0, 0.0), (2.0, 1.5), (3.0, f64::NAN)];
    let series = vec![("s".to_string(), pts)];
    let lin = read_chart(&line_chart_svg_linear("t", "x", "y", &series).unwrap());
    assert_eq!(lin.series[0].line, 3);
    let log = read_chart(&line_chart_svg("t", "x", "y", &series).unwrap());
    assert_eq!((log.series[0].line, log.series[0].markers), (0, 1));
    assert!(log.ticks.contains(&"1".to_string()), "{:?}", log.ticks);
}

#[test]
fn charts_without_points_are_errors() {
    let none = vec![("s".to_string(), vec![(1.0, f64::NAN)])];
    assert!(line_chart_svg_linear("t", "x", "y", &none).is_err());
    assert!(line_chart_svg_linear("t", "x", "y", &[]).is_err());
    let neg = vec![("s".to_string(), vec![(1.0, -2.0)])];
    assert!(line_chart_svg("t", "x", "y", &neg).is_err());
    let narrow = LineChart {
        width: 50.0,
        ..LineChart::new("t", "x", "y").series("s", vec![(1.0, 1.0)])
    };
    assert!(narrow.to_svg().is_err());
}

#[test]
fn text_is_escaped_and_x_is_linear() {
    let pts: Vec<(f64, f64)> = (1..=40)
        .map(|i| (50.0 * i as f64, 3.0 + 2.0 / i as f64))
        .collect();
    let series = vec![
        ("loss & co <train>".to_string(), pts.clone()),
        ("flat \"one\"".to_string(), vec![(50.0, 4.0), (2000.0, 4.0)]),
    ];
    let svg = line_chart_svg_linear("Loss <curve>", "step", "loss", &series).unwrap();
    let c = read_chart(&svg);
    assert_eq!(c.title, "Loss <curve>");
    assert_eq!(c.legend, ["loss & co <train>", "flat \"one\""]);
    let root = parse_svg(&svg);
    let lines: Vec<Vec<(f64, f64)>> = root
        .all()
        .into_iter()
        .filter(|n| n.name == "polyline" && n.attr("stroke-width") == Some("2"))
        .map(|n| {
            n.attr("points")
                .unwrap()
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect();
    let l = &lines[0];
    assert_eq!(l.len(), 40);
    let dx0 = l[1].0 - l[0].0;
    for w in l.windows(2) {
        assert!((w[1].0 - w[0].0 - dx0).abs() < 0.15, "x is not linear");
        assert!(w[1].1 >= w[0].1, "a decreasing loss must go down the page");
    }
    let f = &lines[1];
    assert_eq!(f[0].1, f[1].1);
    assert!((f[0].0 - l[0].0).abs() < 0.15 && (f[1].0 - l[39].0).abs() < 0.15);
}

#[test]
fn charts_are_written_atomically_by_extension() {
    let dir = std::env::temp_dir().join(format!("ff-plot-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let chart = kl_chart(&[5.0, 20.0]);
    chart.write(&dir.join("kl.svg")).unwrap();
    chart.write(&dir.join("kl.PNG")).unwrap();
    let svg = std::fs::read_to_string(dir.join("kl.svg")).unwrap();
    assert_eq!(read_chart(&svg).series.len(), 3);
    let png = decode_png(&std::fs::read(dir.join("kl.PNG")).unwrap());
    assert_eq!(png.width, 720);
    // A directory in the way is refused, not replaced.
    std::fs::create_dir_all(dir.join("taken.svg")).unwrap();
    let e = chart.write(&dir.join("taken.svg")).unwrap_err().to_string();
    assert!(
        e.contains("taken.svg") && e.contains("not a regular file"),
        "{e}"
    );
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 3, "no temporary file left behind");
    std::fs::remove_dir_all(&dir).ok();
}
