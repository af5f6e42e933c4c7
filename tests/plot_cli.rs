//! Every chart the command line writes, read back: `train --loss-curve`, `toy-bench --chart`
//! and `sdflow --plot`, as SVG and as PNG, including charts of one-point series.

#[path = "support/tmp.rs"]
mod tmp;
use tmp::tmpdir;

#[path = "support/chart.rs"]
mod chart;

use std::path::Path;
use std::process::Command;

use chart::{decode_png, hex, read_chart, Chart};
use fisherflow::plot::{SAMPLE_COLOR, TARGET_COLOR};

const BLUE: [u8; 3] = [0, 114, 178];
const VERMILLION: [u8; 3] = [213, 94, 0];
const GREEN: [u8; 3] = [0, 158, 115];
const REFERENCE_GREY: [u8; 3] = [90, 90, 90];

/// Run the binary; panics with its output unless it succeeds.
fn run(args: &[&str], files: &[&Path]) {
    let out = Command::new(env!("CARGO_BIN_EXE_fisherflow"))
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .args(args)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn svg(path: &Path) -> Chart {
    read_chart(&std::fs::read_to_string(path).unwrap())
}

#[test]
fn train_writes_the_loss_curve_as_svg_and_png() {
    let d = tmpdir("plot-cli-loss");
    for (name, model) in [("loss.svg", "a.safetensors"), ("loss.png", "b.safetensors")] {
        run(
            &[
                "train",
                "--data",
                "toy:L=2,K=3",
                "--cpu",
                "--steps",
                "6",
                "--log-every",
                "2",
                "--batch",
                "8",
                "--hidden",
                "8",
                "--eval-samples",
                "0",
                "--out",
            ],
            &[&d.join(model), Path::new("--loss-curve"), &d.join(name)],
        );
    }
    let c = svg(&d.join("loss.svg"));
    assert_eq!(c.title, "Training loss");
    assert!(
        c.subtitle.contains("mean over every 2 steps"),
        "{}",
        c.subtitle
    );
    assert_eq!(c.x_label, "training step");
    assert!(c.y_label.starts_with("loss"), "{}", c.y_label);
    assert_eq!(c.notes, ["lower is better"]);
    assert_eq!(c.series.len(), 1);
    // One point per --log-every interval, each with a marker; one series, so no legend.
    assert_eq!((c.series[0].line, c.series[0].markers), (3, 3));
    assert!(c.legend.is_empty());
    for step in ["2", "4", "6"] {
        assert!(c.ticks.contains(&step.to_string()), "{:?}", c.ticks);
    }
    let png = decode_png(&std::fs::read(d.join("loss.png")).unwrap());
    assert_eq!((png.width, png.height), (720, 440));
    assert!(png.count(BLUE) > 50, "the loss line is missing");
    assert!(png.border_is_white(3));
    std::fs::remove_dir_all(&d).ok();
}

fn toy_bench(ks: &str, chart: &Path) {
    run(
        &[
            "toy-bench",
            "--k",
            ks,
            "--steps",
            "5",
            "--batch",
            "16",
            "--hidden",
            "16",
            "--samples",
            "64",
            "--sample-steps",
            "3",
            "--cpu",
            "--json",
            "--chart",
        ],
        &[chart],
    );
}

fn check_kl_chart(c: &Chart, points: usize) {
    assert!(c.title.contains("KL"), "{}", c.title);
    assert!(
        c.subtitle.contains("5 training steps, 64 samples"),
        "{}",
        c.subtitle
    );
    assert!(c.x_label.starts_with("K (categories"), "{}", c.x_label);
    assert!(c.y_label.contains("KL") && c.y_label.contains("nats"));
    assert_eq!(c.notes, ["lower is better"]);
    let names: Vec<&str> = c.series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["fisher-flow", "fisher-flow+OT", "linear-FM"]);
    let refs: Vec<&str> = c.reference_series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        refs,
        [
            "exact-sample floor (64 true samples)",
            "uniform noise (64 random samples)"
        ]
    );
    let line = if points > 1 { points } else { 0 };
    for s in c.series.iter().chain(&c.reference_series) {
        assert_eq!((s.line, s.markers), (line, points), "{s:?}");
    }
    assert_eq!(c.legend.len(), 5);
    assert_eq!(c.legend[3], "exact-sample floor (64 true samples)");
    assert_eq!(c.legend[4], "uniform noise (64 random samples)");
}

#[test]
fn toy_bench_charts_one_and_several_k() {
    let d = tmpdir("plot-cli-toybench");
    toy_bench("3", &d.join("one.svg"));
    let one = svg(&d.join("one.svg"));
    check_kl_chart(&one, 1);
    assert!(one.ticks.contains(&"3".to_string()));
    toy_bench("3,4", &d.join("two.svg"));
    let two = svg(&d.join("two.svg"));
    check_kl_chart(&two, 2);
    for k in ["3", "4"] {
        assert!(two.ticks.contains(&k.to_string()), "{:?}", two.ticks);
    }
    toy_bench("3", &d.join("one.png"));
    let png = decode_png(&std::fs::read(d.join("one.png")).unwrap());
    assert_eq!(png.width, 720);
    for color in [BLUE, VERMILLION, GREEN, REFERENCE_GREY] {
        assert!(
            png.count(color) >= 9,
            "the marker of {} is missing",
            hex(color)
        );
    }
    assert!(png.border_is_white(3));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn sdflow_plots_the_samples_over_the_target() {
    if fisherflow::gpu::testing::gpu().is_none() {
        return; // no adapter, and FISHERFLOW_REQUIRE_GPU is not set (the reason was printed)
    }
    let d = tmpdir("plot-cli-sdflow");
    let particles = [
        "sdflow", "--target", "ring8", "--n", "96", "--steps", "8", "--plot",
    ];
    run(&particles, &[&d.join("ring.svg")]);
    run(&particles, &[&d.join("ring.png")]);
    let model = [
        "sdflow", "--mode", "model", "--target", "moons", "--n", "64", "--batch", "32", "--steps",
        "4", "--width", "8", "--depth", "1", "--plot",
    ];
    run(&model, &[&d.join("moons.svg")]);

    let c = svg(&d.join("ring.svg"));
    assert!(
        c.title.contains("ring8") && c.title.contains("particles"),
        "{}",
        c.title
    );
    assert!(c.subtitle.contains("MMD²") && c.subtitle.contains("energy distance"));
    assert_eq!(c.x_label, "first coordinate (data units)");
    assert_eq!(c.y_label, "second coordinate (data units)");
    assert_eq!(
        c.point_sets,
        [
            ("target sample".to_string(), 96, hex(TARGET_COLOR)),
            ("particles".to_string(), 96, hex(SAMPLE_COLOR))
        ]
    );
    assert_eq!(
        c.legend,
        ["target sample (96 points)", "particles (96 points)"]
    );
    assert!(c.ticks.len() >= 6, "{:?}", c.ticks);
    let m = svg(&d.join("moons.svg"));
    assert!(m.title.contains("moons") && m.title.contains("generator"));
    assert_eq!(m.point_sets[0].0, "held-out target sample");
    assert_eq!(
        m.point_sets[1],
        ("generated".to_string(), 64, hex(SAMPLE_COLOR))
    );
    let png = decode_png(&std::fs::read(d.join("ring.png")).unwrap());
    assert_eq!(png.width, 600);
    assert!(png.height > 600);
    assert!(png.count(TARGET_COLOR) > 0, "no target point shows");
    assert!(png.count(SAMPLE_COLOR) > 96, "samples missing");
    assert!(png.border_is_white(3));
    std::fs::remove_dir_all(&d).ok();
}
