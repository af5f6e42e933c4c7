//! The `fisherflow` command line end to end: train, resume, sample, eval, and the errors a
//! user sees for bad files and corrupt checkpoints (non-zero exit, no panic).

use std::path::Path;
use std::process::{Command, Output};

#[path = "support/tmp.rs"]
mod tmp;
use tmp::tmpdir;

/// The binary, run in a directory of its own so that nothing in the working directory (a
/// `model.safetensors` left by the demo) changes what it does. The directory outlives every
/// command of the process (an empty `ff-cli-cwd-{pid}` stays behind).
fn bin() -> Command {
    static CWD: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let cwd = CWD.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("ff-cli-cwd-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    });
    let mut c = Command::new(env!("CARGO_BIN_EXE_fisherflow"));
    c.current_dir(cwd);
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn train_sample_eval_on_a_fasta_file_with_resume() {
    let d = tmpdir("cli-fasta");
    let fasta = d.join("seqs.fa");
    let mut body = String::new();
    for i in 0..200 {
        let seq: String = (0..6)
            .map(|j| b"ACGT"[(i * 7 + j * (i % 3 + 1)) % 4] as char)
            .collect();
        body += &format!(">s{i}\n{}\n{}\n", &seq[..3], &seq[3..]);
    }
    std::fs::write(&fasta, body).unwrap();
    let model = d.join("m.safetensors");
    let common = [
        "--data",
        s(&fasta),
        "--alphabet",
        "ACGT",
        "--hidden",
        "16",
        "--batch",
        "16",
        "--cpu",
    ];
    let mut args = vec![
        "train",
        "--steps",
        "20",
        "--log-every",
        "10",
        "--eval-samples",
        "200",
        "--sample-steps",
        "5",
        "--lr-schedule",
        "cosine",
    ];
    args.extend(common);
    args.extend(["--out", s(&model)]);
    let mut bad = args.clone();
    *bad.iter_mut().find(|a| **a == "cosine").unwrap() = "sawtooth";
    let o = run(&bad);
    assert!(
        !o.status.success() && text(&o).contains("--lr-schedule"),
        "{}",
        text(&o)
    );
    assert!(!model.exists());
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("per-position KL"), "{t}");
    assert!(model.exists());
    // Resume to 30 steps.
    let o = run(&[
        "train",
        "--steps",
        "30",
        "--log-every",
        "10",
        "--eval-samples",
        "0",
        "--cpu",
        "--resume",
        "--lr",
        "0.5",
        "--out",
        s(&model),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resumed from"), "{}", text(&o));
    assert!(text(&o).contains("--lr ignored"), "{}", text(&o));
    // The cosine schedule keeps the horizon of the first run.
    assert!(
        text(&o).contains("cosine schedule ends at step 20"),
        "{}",
        text(&o)
    );
    // Sample characters and evaluate them against the data.
    let out = d.join("samples.txt");
    let o = run(&[
        "sample",
        "--model",
        s(&model),
        "--n",
        "50",
        "--steps",
        "5",
        "--solver",
        "midpoint",
        "--cpu",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let samples = std::fs::read_to_string(&out).unwrap();
    assert_eq!(samples.lines().count(), 50);
    // f16 sampling runs on the GPU; with --cpu it is refused.
    let out16 = d.join("samples16.txt");
    let f16 = |backend: &str| {
        run(&[
            "sample",
            "--model",
            s(&model),
            "--n",
            "40",
            "--steps",
            "5",
            "--precision",
            "f16",
            backend,
            "--out",
            s(&out16),
        ])
    };
    let o = f16("--cpu");
    assert!(
        !o.status.success() && text(&o).contains("f16"),
        "{}",
        text(&o)
    );
    let o = run(&[
        "sample",
        "--model",
        s(&model),
        "--n",
        "4",
        "--precision",
        "f8",
        "--out",
        s(&out16),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("precision"),
        "{}",
        text(&o)
    );
    if std::env::var_os("FISHERFLOW_REQUIRE_GPU").is_some() {
        let o = f16("--gpu");
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("f16 network"), "{}", text(&o));
        assert_eq!(std::fs::read_to_string(&out16).unwrap().lines().count(), 40);
    }
    assert!(
        samples
            .lines()
            .all(|l| l.len() == 6 && l.chars().all(|c| "ACGT".contains(c))),
        "{samples}"
    );
    let o = run(&[
        "eval",
        "--samples",
        s(&out),
        "--data",
        s(&fasta),
        "--alphabet",
        "ACGT",
        "--samples-format",
        "chars",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("joint KL"), "{}", text(&o));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn bad_files_name_the_line_and_exit_non_zero() {
    let d = tmpdir("cli-bad");
    let ragged = d.join("ragged.txt");
    std::fs::write(&ragged, "0 1 2\n1 2\n").unwrap();
    let o = run(&[
        "train",
        "--data",
        s(&ragged),
        "--steps",
        "1",
        "--cpu",
        "--out",
        s(&d.join("x.safetensors")),
    ]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("ragged.txt:2"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    let words = d.join("words.txt");
    std::fs::write(&words, "0 1\n1 x\n").unwrap();
    let o = run(&[
        "train",
        "--data",
        s(&words),
        "--steps",
        "1",
        "--cpu",
        "--out",
        s(&d.join("x.safetensors")),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("words.txt:2"), "{}", text(&o));
    let o = run(&["train", "--data", s(&d.join("missing.txt")), "--cpu"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no such file"), "{}", text(&o));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_corrupt_checkpoint_is_refused_and_left_alone() {
    let d = tmpdir("cli-corrupt");
    let model = d.join("m.safetensors");
    std::fs::write(&model, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":").unwrap();
    let before = std::fs::read(&model).unwrap();
    for args in [
        vec![
            "sample",
            "--model",
            s(&model),
            "--n",
            "4",
            "--cpu",
            "--out",
            s(&d.join("o.txt")),
        ],
        vec![
            "train",
            "--resume",
            "--out",
            s(&model),
            "--cpu",
            "--steps",
            "2",
        ],
    ] {
        let o = run(&args);
        assert!(!o.status.success());
        let t = text(&o);
        assert!(t.contains("checkpoint"), "{t}");
        assert!(!t.contains("panicked"), "{t}");
    }
    assert_eq!(std::fs::read(&model).unwrap(), before);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn divergence_stops_training_and_keeps_the_last_checkpoint() {
    let d = tmpdir("cli-nan");
    let model = d.join("m.safetensors");
    let base = [
        "--data",
        "toy:L=2,K=3",
        "--hidden",
        "16",
        "--batch",
        "16",
        "--cpu",
        "--log-every",
        "5",
        "--eval-samples",
        "0",
    ];
    let mut args = vec!["train", "--steps", "5"];
    args.extend(base);
    args.extend(["--out", s(&model)]);
    assert!(run(&args).status.success());
    let good = std::fs::read(&model).unwrap();
    // A new run may not silently replace an existing checkpoint.
    let mut args = vec!["train", "--steps", "20"];
    args.extend(base);
    args.extend(["--out", s(&model)]);
    let o = run(&args);
    assert!(
        !o.status.success() && text(&o).contains("--force"),
        "{}",
        text(&o)
    );
    let mut args = vec![
        "train",
        "--force",
        "--steps",
        "20",
        "--lr",
        "1e30",
        "--clip",
        "0",
        "--checkpoint-every",
        "5",
    ];
    args.extend(base);
    args.extend(["--out", s(&model)]);
    let o = run(&args);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("non-finite") && t.contains("no checkpoint was written"),
        "{t}"
    );
    assert_eq!(
        std::fs::read(&model).unwrap(),
        good,
        "the previous checkpoint changed"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn devices_lists_the_adapter_or_explains_how_to_get_one() {
    let o = run(&["devices"]);
    let t = text(&o);
    if o.status.success() {
        assert!(t.contains('*'), "{t}");
    } else {
        assert!(t.contains("mesa-vulkan-drivers"), "{t}");
    }
    let o = run(&["--adapter", "no-such-adapter-name", "devices"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no-such-adapter-name"));
}

#[test]
fn toy_bench_reports_every_method_as_json_and_draws_its_chart() {
    let d = tmpdir("cli-toybench");
    let chart = d.join("kl.svg");
    let args = [
        "toy-bench",
        "--k",
        "3",
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
        "--lr-schedule",
        "cosine",
        "--cpu",
        "--json",
        "--chart",
        s(&chart),
    ];
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for r in rows {
        assert_eq!(r["k"], 3);
        assert_eq!(r["steps"], 5);
        let kl = r["kl"].as_f64().unwrap();
        assert!(kl.is_finite() && kl >= 0.0, "{r}");
    }
    assert!(std::fs::read_to_string(&chart).unwrap().contains("<svg"));
    let mut bad = args.to_vec();
    *bad.iter_mut().find(|a| **a == "cosine").unwrap() = "step";
    let o = run(&bad);
    assert!(
        !o.status.success() && text(&o).contains("--lr-schedule"),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn toy_bench_paper_protocol_resumes_from_its_state_directory() {
    let d = tmpdir("cli-toybench-state");
    let state = d.join("state");
    let args = |steps: &'static str| {
        vec![
            "toy-bench",
            "--protocol",
            "paper",
            "--k",
            "3",
            "--methods",
            "fisher-flow+OT,dirichlet-FM,fisher-rao-simplex",
            "--steps",
            steps,
            "--batch",
            "8",
            "--hidden",
            "8",
            "--samples",
            "64",
            "--sample-steps",
            "2",
            "--cpu",
            "--json",
            "--state",
            s(&state),
        ]
    };
    let o = run(&args("4"));
    assert!(o.status.success(), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for r in rows {
        assert!(r["kl_uniform"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["samples"], 64);
    }
    for m in ["fisher-flow+OT", "dirichlet-FM", "fisher-rao-simplex"] {
        assert!(state.join(format!("{m}-K3.safetensors")).is_file(), "{m}");
    }
    // Finished rows are not run again.
    let again = run(&args("4"));
    assert!(again.status.success(), "{}", text(&again));
    let reused: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    for (a, b) in rows.iter().zip(reused.as_array().unwrap()) {
        assert_eq!(a["method"], b["method"]);
        for key in ["kl", "seconds"] {
            let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-12 * x.abs(),
                "{key}: a reused row keeps its values"
            );
        }
    }
    // A run cut off after its checkpoint continues from it: the same KL.
    std::fs::remove_file(state.join("rows.json")).unwrap();
    let resumed = run(&args("4"));
    let back: serde_json::Value = serde_json::from_slice(&resumed.stdout).unwrap();
    for (a, b) in rows.iter().zip(back.as_array().unwrap()) {
        assert_eq!(a["kl"], b["kl"], "{a} {b}");
    }
    // Other settings need --force.
    let other = run(&args("5"));
    assert!(
        !other.status.success() && text(&other).contains("--state"),
        "{}",
        text(&other)
    );
    let mut forced = args("5");
    forced.push("--force");
    assert!(run(&forced).status.success());
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_run_over_the_adapters_memory_is_refused_before_any_work() {
    // `devices` reports the device-local memory of Vulkan adapters (lavapipe: 2 GiB).
    let o = run(&["devices"]);
    let t = text(&o);
    let gib = t
        .lines()
        .find(|l| l.contains("device memory"))
        .and_then(|l| l.split("device memory ").nth(1))
        .and_then(|r| r.split(" GiB").next())
        .and_then(|v| v.parse::<f64>().ok());
    let Some(gib) = gib else {
        assert!(!o.status.success() || !t.contains("Vulkan"), "{t}");
        return;
    };
    // About 8.8 GiB of activations, each under the 128 MiB binding limit.
    let dir = tmpdir("cli-adapter-memory");
    let out = dir.join("m.safetensors");
    let args = [
        "train",
        "--gpu",
        "--data",
        "toy:L=4,K=20",
        "--hidden",
        "1024",
        "--blocks",
        "20",
        "--batch",
        "16384",
        "--steps",
        "1",
        "--out",
        s(&out),
    ];
    if gib < 8.0 {
        let o = run(&args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(
            t.contains("the adapter's memory") && t.contains("--batch"),
            "{t}"
        );
        assert!(!out.exists());
    }
}
