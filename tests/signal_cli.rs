//! `--signal` on the command line: a short training run conditioned on a track, and bad input
//! refused before any work with a message naming the flag or the file (and the line), leaving
//! no checkpoint behind.

use std::path::Path;

#[path = "support/cli.rs"]
mod cli;
use cli::{text, tmpdir};

/// Six sequences of length 4 over two tokens, their tracks, and files with bad tracks.
fn files(dir: &Path) {
    let w = |name: &str, body: &str| std::fs::write(dir.join(name), body).unwrap();
    w(
        "seqs.txt",
        "0 1 1 0\n1 1 0 0\n0 0 0 1\n1 0 1 0\n0 1 0 1\n1 1 1 1\n",
    );
    w(
        "track.txt",
        "-1 1 1 -1\n1 1 -1 -1\n-1 -1 -1 1\n1 -1 1 -1\n-1 1 -1 1\n1 1 1 1\n",
    );
    w(
        "short.txt",
        "-1 1 1 -1\n1 1 -1 -1\n-1 -1 1\n1 -1 1 -1\n-1 1 -1 1\n1 1 1 1\n",
    );
    w(
        "five.txt",
        "-1 1 1 -1\n1 1 -1 -1\n-1 -1 -1 1\n1 -1 1 -1\n-1 1 -1 1\n",
    );
    w(
        "nan.txt",
        "-1 1 1 -1\n1 1 -1 -1\n-1 -1 -1 1\n1 NaN 1 -1\n-1 1 -1 1\n1 1 1 1\n",
    );
    w(
        "inf.txt",
        "-1 1 1 -1\n1 1 -1 -1\n-1 -1 -1 1\n1 -1 1 -1\n-1 1 -1 inf\n1 1 1 1\n",
    );
    w(
        "word.txt",
        "-1 1 1 -1\nabc 1 -1 -1\n-1 -1 -1 1\n1 -1 1 -1\n-1 1 -1 1\n1 1 1 1\n",
    );
}

fn train_args(out: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "train", "--data", "seqs.txt", "--arch", "conv", "--hidden", "8", "--blocks", "1",
        "--kernel", "3", "--batch", "4", "--steps", "2", "--cpu", "--out", out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run_in(dir: &Path, args: &[String]) -> std::process::Output {
    let mut c = cli::fisherflow();
    c.current_dir(dir)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs `args` in `dir` and checks that it fails cleanly with every word of `want` in its
/// message and that `out` was not written.
fn refused(dir: &Path, args: &[String], want: &[&str], out: &str) {
    let before = std::fs::read(dir.join(out)).ok();
    let o = run_in(dir, args);
    let msg = text(&o);
    assert!(
        !o.status.success() && !matches!(o.status.code(), Some(101) | Some(134) | None),
        "{args:?} should fail cleanly: {:?}\n{msg}",
        o.status
    );
    for w in want {
        assert!(msg.contains(w), "{args:?}: {w:?} not in\n{msg}");
    }
    assert_eq!(
        std::fs::read(dir.join(out)).ok(),
        before,
        "{args:?} changed {out}"
    );
}

#[test]
fn train_and_sample_with_a_signal_track_and_bad_tracks_are_refused() {
    let dir = tmpdir("signal-train");
    files(&dir);
    let ok = run_in(
        &dir,
        &train_args("m.safetensors", &["--signal", "track.txt"]),
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let plain = run_in(&dir, &train_args("plain.safetensors", &[]));
    assert!(plain.status.success(), "{}", text(&plain));
    let new = "new.safetensors";
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--signal", "short.txt"],
            vec!["--signal", "short.txt:3", "3 values", "length 4"],
        ),
        (
            vec!["--signal", "five.txt"],
            vec!["--signal", "five.txt", "5 tracks", "6"],
        ),
        (
            vec!["--signal", "nan.txt"],
            vec!["--signal", "nan.txt:4", "not finite"],
        ),
        (
            vec!["--signal", "inf.txt"],
            vec!["--signal", "inf.txt:5", "not finite"],
        ),
        (
            vec!["--signal", "word.txt"],
            vec!["--signal", "word.txt:2", "not a number"],
        ),
        (
            vec!["--signal", "missing.txt"],
            vec!["--signal", "missing.txt"],
        ),
        (
            vec!["--signal", "."],
            vec!["--signal", "not a regular file"],
        ),
        (
            vec!["--signal", "track.txt", "--ot", "exact"],
            vec!["--signal", "--ot"],
        ),
    ];
    for (extra, want) in &cases {
        refused(&dir, &train_args(new, extra), want, new);
    }
    // The MLP reads no track.
    let mut mlp = train_args(new, &["--signal", "track.txt"]);
    let i = mlp.iter().position(|a| a == "conv").unwrap();
    mlp[i] = "mlp".into();
    refused(&dir, &mlp, &["--signal", "--arch conv"], new);
    // Resuming with another signal setting than the checkpoint's.
    let resume = |out: &'static str, extra: &[&'static str]| {
        let mut a = train_args(out, extra);
        let i = a.iter().position(|x| x == "2").unwrap();
        a[i] = "3".into();
        a.push("--resume".into());
        a
    };
    refused(
        &dir,
        &resume("m.safetensors", &[]),
        &["--signal", "signal track"],
        "m.safetensors",
    );
    refused(
        &dir,
        &resume("plain.safetensors", &["--signal", "track.txt"]),
        &["--signal", "without a signal track"],
        "plain.safetensors",
    );
    refused(
        &dir,
        &resume(
            "m.safetensors",
            &["--signal", "track.txt", "--signal", "track.txt"],
        ),
        &["--signal", "1 channel"],
        "m.safetensors",
    );
    let again = run_in(&dir, &resume("m.safetensors", &["--signal", "track.txt"]));
    assert!(again.status.success(), "{}", text(&again));
    // Sampling: one track per sample, as many as --n.
    let sample = |model: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["sample", "--model", model, "--steps", "3", "--cpu", "--out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.push("s.txt".into());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let ok = run_in(
        &dir,
        &sample("m.safetensors", &["--signal", "track.txt", "--n", "6"]),
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let lines = std::fs::read_to_string(dir.join("s.txt")).unwrap();
    assert_eq!(lines.lines().count(), 6, "{lines}");
    std::fs::remove_file(dir.join("s.txt")).unwrap();
    // The likelihood of a signal model is given each sequence's track: without --signal it
    // is refused naming the flag, with bad tracks naming the file, and with the tracks it runs.
    let nll = |extra: &[&str]| -> Vec<String> {
        [
            "nll",
            "--model",
            "m.safetensors",
            "--data",
            "seqs.txt",
            "--cpu",
            "--steps",
            "2",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
    };
    let o = run_in(&dir, &nll(&[]));
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("--signal FILE"), "{}", text(&o));
    for (bad, want) in [
        ("five.txt", "five.txt"),
        ("nan.txt", "nan.txt"),
        ("nope.txt", "nope.txt"),
    ] {
        let o = run_in(&dir, &nll(&["--signal", bad]));
        assert!(!o.status.success(), "{bad}: {}", text(&o));
        assert!(text(&o).contains(want), "{bad}: {}", text(&o));
    }
    let o = run_in(
        &dir,
        &nll(&["--signal", "track.txt", "--signal", "track.txt"]),
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("channel"), "{}", text(&o));
    let o = run_in(&dir, &nll(&["--signal", "track.txt"]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("its signal track (1 channel)"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("per token"), "{}", text(&o));
    let o = run_in(
        &dir,
        &[
            "nll",
            "--model",
            "plain.safetensors",
            "--data",
            "seqs.txt",
            "--cpu",
            "--signal",
            "track.txt",
        ]
        .map(String::from),
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("no signal track"), "{}", text(&o));
    let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        (
            "m.safetensors",
            vec!["--n", "6"],
            vec!["--signal FILE", "signal track"],
        ),
        (
            "plain.safetensors",
            vec!["--signal", "track.txt", "--n", "6"],
            vec!["--signal", "no signal track"],
        ),
        (
            "m.safetensors",
            vec!["--signal", "track.txt", "--n", "5"],
            vec!["--signal", "track.txt", "6 tracks", "--n is 5"],
        ),
        (
            "m.safetensors",
            vec!["--signal", "short.txt", "--n", "6"],
            vec!["--signal", "short.txt:3"],
        ),
        (
            "m.safetensors",
            vec!["--signal", "nan.txt", "--n", "6"],
            vec!["--signal", "nan.txt:4", "not finite"],
        ),
        (
            "m.safetensors",
            vec!["--signal", "track.txt", "--signal", "track.txt", "--n", "6"],
            vec!["--signal", "2 channels"],
        ),
    ];
    for (model, extra, want) in &cases {
        refused(&dir, &sample(model, extra), want, "s.txt");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
