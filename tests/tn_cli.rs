//! `fisherflow tn learn`, `tn compare` and `tn … --reverse-steps` end to end: the learning loop
//! on energies reproduces the exact 4×4 cylinder, outputs are written and never overwritten
//! without --force, and bad input is refused quickly with a message naming the flag.

#[path = "support/cli.rs"]
mod cli;
use cli::{run, text, tmpdir};
use std::time::{Duration, Instant};

#[test]
fn learn_on_the_4x4_cylinder_from_energies_matches_the_exact_values() {
    learn_4x4("--cpu");
    // Every Metropolis–Hastings step on the GPU adapter.
    let o = learn_4x4("--gpu");
    assert!(
        text(&o).contains("every Metropolis–Hastings step"),
        "{}",
        text(&o)
    );
}

fn learn_4x4(device: &str) -> std::process::Output {
    let d = tmpdir("tn-learn");
    let json = d.join("learn.json");
    let o = run(&[
        "tn",
        "learn",
        device,
        "--lx",
        "4",
        "--ly",
        "4",
        "--boundary",
        "cylinder",
        "--beta",
        "0.4407",
        "--rounds",
        "4",
        "--chains",
        "48",
        "--steps",
        "400",
        "--chi",
        "8",
        "--seed",
        "11",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let doc = read_json(&json);
    let finals = doc["final"].as_array().unwrap();
    assert_eq!(finals.len(), 2);
    for f in finals {
        let (mean, se) = mean_se(&f["estimate"]);
        let exact = f["exact"].as_f64().unwrap();
        eprintln!("{}: {mean} ± {se} (exact {exact})", f["name"]);
        assert!(se > 0.0 && (mean - exact).abs() < 3.0 * se, "{}", text(&o));
    }
    // The exact values are the enumerated 4×4 cylinder's.
    assert!((finals[1]["exact"].as_f64().unwrap() - 0.680465).abs() < 2e-4);
    let rounds = doc["rounds"].as_array().unwrap();
    let acc = |i: usize| rounds[i]["acceptance"].as_f64().unwrap();
    assert!(
        acc(3) > acc(0) + 0.2,
        "acceptance does not improve: {}",
        text(&o)
    );
    // The JSON is not overwritten without --force.
    let again = run(&[
        "tn",
        "learn",
        "--rounds",
        "1",
        "--steps",
        "10",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(!again.status.success() && text(&again).contains("--force"));
    let _ = std::fs::remove_dir_all(&d);
    o
}

#[test]
fn fredkin_and_table_targets_learn_and_reverse_steps_generate() {
    let d = tmpdir("tn-targets");
    let o = run(&[
        "tn",
        "learn",
        "--target",
        "fredkin",
        "--n",
        "10",
        "--c",
        "0.7",
        "--rounds",
        "2",
        "--chains",
        "16",
        "--steps",
        "200",
        "--proposal",
        "connected",
        "--chi",
        "2",
        "--local-sweeps",
        "0",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("final A/N") && text(&o).contains("exact"));
    let table = d.join("w.txt");
    let body: String = (0..64)
        .map(|i| format!("{}\n", ((i * 7) % 11) as f64 * 0.3))
        .collect();
    std::fs::write(&table, body).unwrap();
    let o = run(&[
        "tn",
        "learn",
        "--target",
        "table",
        "--table",
        table.to_str().unwrap(),
        "--states",
        "4",
        "--rounds",
        "2",
        "--chains",
        "16",
        "--steps",
        "100",
        "--chi",
        "4",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("mean state"), "{}", text(&o));
    // Generation by exact reverse steps reproduces the exact ⟨|m|⟩ and keeps Dyck paths.
    let o = run(&[
        "tn",
        "ising",
        "--lx",
        "3",
        "--ly",
        "3",
        "--beta",
        "0.4",
        "--samples",
        "1000",
        "--cpu",
        "--reverse-steps",
        "4",
        "--reverse-samples",
        "4000",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("reverse dynamics: 4000 trajectories of 4"),
        "{t}"
    );
    let line = t.lines().find(|l| l.starts_with("  <|m|>")).unwrap();
    let z: f64 = line
        .split(", ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(z.abs() < 4.0, "{line}");
    let o = run(&[
        "tn",
        "fredkin",
        "--n",
        "10",
        "--samples",
        "500",
        "--cpu",
        "--reverse-steps",
        "3",
        "--reverse-samples",
        "2000",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("  Dyck paths: 2000 of 2000 (non-Dyck: 0)"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn compare_writes_a_table_a_chart_and_json() {
    let d = tmpdir("tn-compare");
    let (chart, json) = (d.join("ess.svg"), d.join("cmp.json"));
    let o = run(&[
        "tn",
        "compare",
        "--l",
        "4",
        "--betas",
        "0.3,0.4407",
        "--rounds",
        "2",
        "--chains",
        "8",
        "--steps",
        "100",
        "--sweeps",
        "400",
        "--tn-steps",
        "200",
        "--chi",
        "4",
        "--fit-steps",
        "60",
        "--column",
        "--chart",
        chart.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    for m in ["metropolis", "disconnected", "connected", "column MPS"] {
        assert_eq!(t.matches(&format!("| {m} |")).count(), 2, "{t}");
    }
    assert!(t.contains("(exact)"));
    // On the cylinder the column MPS is the target's own law: every proposal accepted.
    assert_eq!(t.matches("| column MPS | 1.000 |").count(), 2, "{t}");
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("connected |m|"));
    assert!(svg.contains("column MPS |m|"));
    let doc = read_json(&json);
    assert_eq!(doc["results"].as_array().unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn compare_learns_a_column_proposal_on_a_torus() {
    let d = tmpdir("tn-compare-torus");
    let json = d.join("cmp.json");
    let o = run(&[
        "tn",
        "compare",
        "--l",
        "4",
        "--boundary",
        "torus",
        "--betas",
        "0.4407",
        "--rounds",
        "2",
        "--chains",
        "16",
        "--steps",
        "100",
        "--sweeps",
        "400",
        "--tn-steps",
        "1500",
        "--chi",
        "4",
        "--fit-steps",
        "20",
        "--column",
        "--column-fit-steps",
        "20",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("column model learned in"), "{}", text(&o));
    let doc = read_json(&json);
    let r = &doc["results"][0];
    let exact = r["exact"].as_array().unwrap();
    let col = r["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "column MPS")
        .unwrap();
    let acc = col["acceptance"].as_f64().unwrap();
    assert!(acc > 0.2 && acc < 1.0, "acceptance {acc}");
    for (key, x) in ["energy", "abs_m"].iter().zip(exact) {
        let (mean, se) = mean_se(&col[key]);
        let x = x.as_f64().unwrap();
        assert!(
            (mean - x).abs() < 4.0 * se,
            "{key}: {mean} ± {se} against {x}"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `(mean, se)` of an estimate in the JSON outputs.
fn mean_se(e: &serde_json::Value) -> (f64, f64) {
    (e["mean"].as_f64().unwrap(), e["se"].as_f64().unwrap())
}

/// Each command must fail quickly, without a panic, naming `needle`.
fn refused(args: &[&str], needle: &str) {
    let t0 = Instant::now();
    let o = run(args);
    let t = text(&o);
    assert!(!o.status.success(), "{args:?} succeeded: {t}");
    assert!(!t.contains("panicked"), "{args:?} panicked: {t}");
    assert!(t.contains(needle), "{args:?}: `{needle}` not in: {t}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "{args:?} took {:?}",
        t0.elapsed()
    );
}

#[test]
fn bad_input_is_refused_before_any_work() {
    let d = tmpdir("tn-bad");
    refused(&["tn", "learn", "--beta", "0"], "--beta");
    refused(&["tn", "learn", "--beta", "-0.3"], "--beta");
    refused(&["tn", "learn", "--beta", "NaN"], "--beta");
    refused(&["tn", "learn", "--beta", "inf"], "--beta");
    refused(&["tn", "learn", "--lr", "nan"], "--lr");
    refused(&["tn", "learn", "--field", "nan"], "--field");
    refused(
        &[
            "tn",
            "learn",
            "--proposal",
            "connected",
            "--noise-time",
            "0",
        ],
        "--noise-time",
    );
    refused(&["tn", "learn", "--proposal", "sideways"], "--proposal");
    refused(&["tn", "learn", "--boundary", "moebius"], "--boundary");
    refused(&["tn", "learn", "--chains", "0"], "--chains");
    refused(&["tn", "learn", "--keep-every", "0"], "--keep-every");
    refused(
        &["tn", "learn", "--target", "fredkin", "--n", "7"],
        "even number",
    );
    refused(
        &["tn", "learn", "--target", "fredkin", "--c", "1.5"],
        "c must lie",
    );
    refused(&["tn", "learn", "--target", "table"], "--table");
    // Sizes whose memory is out of reach: a huge bond dimension, a huge lattice.
    refused(
        &["tn", "learn", "--lx", "16", "--ly", "16", "--chi", "100000"],
        "bond dimension",
    );
    refused(&["tn", "learn", "--lx", "100000", "--ly", "100000"], "2^24");
    refused(
        &["tn", "compare", "--l", "16", "--chi", "1000000"],
        "bond dimension",
    );
    refused(&["tn", "ising", "--lx", "4", "--ly", "40"], "too wide");
    refused(
        &["tn", "compare", "--l", "30", "--column"],
        "column proposals",
    );
    // On a GPU the column table (8.1 GB at L = 22) must fit one storage binding, at most 4 GiB
    // anywhere; a host with under 16 GiB free refuses it first, for its memory.
    if fisherflow::gpu::testing::gpu().is_some() {
        let args = ["tn", "compare", "--l", "22", "--column", "--gpu"];
        let t = text(&run(&args));
        let needle = if t.contains("half the available memory") {
            "half the available memory"
        } else {
            "storage binding"
        };
        refused(&args, needle);
    }
    // Models too large to build are refused before anything is allocated, on either device.
    refused(
        &["tn", "fredkin", "--n", "10000000", "--samples", "2"],
        "Fredkin chain of 10000000 sites",
    );
    refused(
        &[
            "tn",
            "ising",
            "--lx",
            "10000",
            "--ly",
            "10",
            "--samples",
            "2",
            "--cpu",
        ],
        "Ising 10000 × 10 lattice",
    );
    refused(
        &["tn", "learn", "--lx", "4000", "--ly", "4000", "--chi", "16"],
        "--chi 16",
    );
    refused(
        &[
            "tn",
            "learn",
            "--chains",
            "100000000",
            "--lx",
            "16",
            "--ly",
            "16",
        ],
        "exceed",
    );
    refused(&["tn", "learn", "--steps", "4000000000"], "limit");
    refused(&["tn", "learn", "--batch", "100000000000"], "exceed");
    refused(&["tn", "compare", "--sweeps", "100000000000"], "limit");
    refused(&["tn", "ising", "--samples", "1000000000000"], "exceed");
    refused(
        &[
            "tn",
            "fredkin",
            "--reverse-steps",
            "2",
            "--reverse-samples",
            "1000000000000",
        ],
        "exceed",
    );
    refused(&["tn", "ising", "--beta", "0"], "--beta");
    refused(&["tn", "ising", "--beta", "nan"], "--beta");
    refused(
        &["tn", "ising", "--reverse-steps", "3", "--noise-time", "-1"],
        "--noise-time",
    );
    refused(&["tn", "compare", "--betas", "0.3,nan"], "--betas");
    refused(&["tn", "compare", "--betas", "0.3,-0.1"], "--betas");
    // Malformed table files name the file and line.
    let bad = d.join("bad.txt");
    std::fs::write(&bad, "0.5\n1.0\nabc\n2\n").unwrap();
    refused(
        &[
            "tn",
            "learn",
            "--target",
            "table",
            "--table",
            bad.to_str().unwrap(),
        ],
        "bad.txt:3",
    );
    std::fs::write(&bad, "0.5\n1.0\n2\n").unwrap();
    refused(
        &[
            "tn",
            "learn",
            "--target",
            "table",
            "--table",
            bad.to_str().unwrap(),
        ],
        "2^N",
    );
    std::fs::write(&bad, "0.5\nnan\n").unwrap();
    refused(
        &[
            "tn",
            "learn",
            "--target",
            "table",
            "--table",
            bad.to_str().unwrap(),
        ],
        "bad.txt:2",
    );
    // An existing chart is kept unless --force; a directory is never replaced.
    let chart = d.join("c.svg");
    std::fs::write(&chart, "mine").unwrap();
    refused(
        &[
            "tn",
            "compare",
            "--l",
            "4",
            "--chart",
            chart.to_str().unwrap(),
        ],
        "--force",
    );
    assert_eq!(std::fs::read_to_string(&chart).unwrap(), "mine");
    refused(
        &[
            "tn",
            "compare",
            "--l",
            "4",
            "--chart",
            d.to_str().unwrap(),
            "--force",
        ],
        "not a regular file",
    );
    let _ = std::fs::remove_dir_all(&d);
}
