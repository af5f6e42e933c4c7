//! Bad input of every class, table-driven: each case must exit non-zero (never 101, a panic,
//! or 134, an abort), print a message that names the flag or file at fault, leave every file
//! in its directory byte for byte as it was, and not hang. Also: a SIGTERM stops `train` with a
//! checkpoint that a resumed run continues from, and two identical runs write identical
//! checkpoints.

#[path = "support/tmp.rs"]
mod tmp;
use tmp::tmpdir;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary in `dir` with a time limit.
fn run_in(dir: &Path, args: &[String], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fisherflow"))
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("{args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir` and its bytes (symbolic links as their targets' names).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            let t = std::fs::read_link(&p).unwrap();
            out.insert(name, t.to_string_lossy().as_bytes().to_vec());
        } else if ft.is_dir() {
            for (k, v) in snapshot(&p) {
                out.insert(format!("{name}/{k}"), v);
            }
        } else if ft.is_file() {
            out.insert(name, std::fs::read(&p).unwrap());
        }
    }
    out
}

/// A directory with a small trained model, data files of every kind and an existing output.
fn fixture() -> tmp::TmpDir {
    let d = tmpdir("bad-fixture");
    let w = |name: &str, body: &[u8]| std::fs::write(d.join(name), body).unwrap();
    w("ids.txt", b"0 1 2\n2 1 0\n1 1 1\n");
    w("ragged.txt", b"0 1 2\n1 2\n");
    w("words.txt", b"0 1\n1 x\n");
    w("negative.txt", b"0 -1\n");
    w("huge_id.txt", b"0 1\n16777215 2\n");
    w("too_big_id.txt", b"0 99999999999\n");
    w("empty.txt", b"");
    w("blank.txt", b"\n\n  \n");
    w("binary.txt", &[0xff, 0xfe, 0x00, 0x01, 0x80]);
    w("acgt.fa", b">a\nACGT\n>b\nTTGA\n");
    w("bad_char.fa", b">a\nACGT\n>b\nTTXA\n");
    w("no_header.fa", b"ACGT\n>b\nTTGA\n");
    w("empty_record.fa", b">a\n>b\nTTGA\n");
    w("half_labels.fa", b">a class=0\nACGT\n>b\nTTGA\n");
    w("points.txt", b"0 0\n1 1\nx y\n");
    w("one_point.txt", b"0.5 0.5\n");
    w(
        "corrupt.safetensors",
        b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":",
    );
    w("short.safetensors", b"\x01\x02");
    w("existing.txt", b"precious\n");
    std::fs::create_dir_all(d.join("adir")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("existing.txt", d.join("link.txt")).unwrap();
    let o = run_in(
        &d,
        &[
            "train",
            "--data",
            "toy:L=2,K=3",
            "--steps",
            "4",
            "--hidden",
            "8",
            "--batch",
            "8",
            "--cpu",
            "--eval-samples",
            "0",
            "--out",
            "m.safetensors",
        ]
        .map(String::from),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", text(&o));
    // A model too wide for the exact divergence (L·K = 1200).
    let o = run_in(
        &d,
        &"train --data toy:L=3,K=400 --steps 1 --hidden 4 --batch 4 --cpu --eval-samples 0 \
          --out wide.safetensors"
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>(),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", text(&o));
    // A class-conditional model of two classes.
    let o = run_in(
        &d,
        &"train --data dna:L=6,classes=2 --conditional --steps 1 --hidden 4 --batch 4 --cpu \
          --eval-samples 0 --out cond.safetensors"
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>(),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", text(&o));
    d
}

/// `(arguments, words one of which the message must contain)`.
type Case = (&'static str, &'static [&'static str]);

const MAX: &str = "18446744073709551615";

fn cases() -> Vec<(String, &'static [&'static str])> {
    let t = "train --cpu --steps 2 --eval-samples 0";
    let s = "sample --model m.safetensors";
    let n = "nll --cpu --model m.safetensors --max-seqs 8";
    let fixed: Vec<Case> = vec![
        // sizes: every size flag, at the largest value and past the host's memory
        (
            "sample --cpu --model m.safetensors --out new.txt --n MAX",
            &["--n"],
        ),
        (
            "sample --cpu --model m.safetensors --out new.txt --steps MAX",
            &["--steps"],
        ),
        (
            "sample --cpu --model m.safetensors --out new.txt --steps 0",
            &["--steps"],
        ),
        (
            "sample --cpu --model m.safetensors --out new.txt --n 0",
            &["--n"],
        ),
        (
            "T --data toy:L=2,K=3 --batch MAX --out new.safetensors",
            &["--batch"],
        ),
        (
            "T --data toy:L=2,K=3 --batch 1000000000 --out new.safetensors",
            &["--batch"],
        ),
        (
            "T --data toy:L=2,K=3 --hidden 100000 --out new.safetensors",
            &["--hidden"],
        ),
        (
            "T --data toy:L=2,K=3 --hidden MAX --out new.safetensors",
            &["--hidden"],
        ),
        (
            "T --data toy:L=2,K=3 --blocks 1000000 --out new.safetensors",
            &["--blocks"],
        ),
        (
            "T --data toy:L=2,K=3 --arch conv --kernel 0 --out new.safetensors",
            &["--kernel"],
        ),
        (
            "T --data toy:L=2,K=3 --arch transformer --out new.safetensors",
            &["--arch"],
        ),
        (
            "T --data dna:L=1024 --arch conv --batch 100000000 --out new.safetensors",
            &["--batch"],
        ),
        (
            "T --data toy:L=2,K=3 --conditional --out new.safetensors",
            &["--conditional"],
        ),
        (
            "T --data dna:L=8 --conditional --cond-drop 1 --out new.safetensors",
            &["--cond-drop"],
        ),
        (
            "T --data dna:L=8 --cond-drop 0.1 --out new.safetensors",
            &["--conditional"],
        ),
        (
            "T --data dna:L=8 --labels labels.txt --out new.safetensors",
            &["--labels"],
        ),
        (
            "T --data toy:L=2,K=3 --eval-samples MAX",
            &["--eval-samples"],
        ),
        (
            "T --data toy:L=2,K=3 --batch 0 --out new.safetensors",
            &["--batch"],
        ),
        (
            "T --data toy:L=2,K=3 --steps 0 --out new.safetensors",
            &["--steps"],
        ),
        (
            "T --data toy:L=2,K=3 --log-every 0 --out new.safetensors",
            &["--log-every"],
        ),
        (
            "T --data toy:L=2,K=3 --sample-steps MAX",
            &["--sample-steps"],
        ),
        (
            "T --data toy:L=100000,K=5 --out new.safetensors",
            &["toy:L=100000"],
        ),
        (
            "T --data toy:L=3,K=9000000 --out new.safetensors",
            &["toy:L=3,K=9000000"],
        ),
        ("T --data toy:L=2,K=0 --out new.safetensors", &["toy"]),
        ("T --data toy:L=MAX,K=MAX --out new.safetensors", &["toy"]),
        (
            "T --data huge_id.txt --out new.safetensors",
            &["huge_id.txt"],
        ),
        (
            "T --data too_big_id.txt --out new.safetensors",
            &["too_big_id.txt"],
        ),
        (
            "T --data dna:L=100000000,classes=3 --out new.safetensors",
            &["dna:"],
        ),
        ("sdflow --target ring8 --n MAX", &["--n"]),
        ("sdflow --target ring8 --n 1", &["--n"]),
        ("sdflow --target ring8 --target-n MAX", &["--target-n"]),
        ("sdflow --target ring8 --steps MAX", &["--steps"]),
        (
            "sdflow --target ring8 --mode model --batch MAX",
            &["--batch"],
        ),
        (
            "sdflow --target ring8 --mode model --width 100000",
            &["--width"],
        ),
        ("sdflow --target one_point.txt --steps 1", &["target"]),
        ("toy-bench --k 1 --cpu", &["--k"]),
        // methods, OT pairing and the benchmark protocol
        (
            "T --data toy:L=2,K=3 --ot-pairing sample --out new.safetensors",
            &["--ot-pairing", "--ot"],
        ),
        (
            "T --data toy:L=2,K=3 --ot exact --ot-pairing often --out new.safetensors",
            &["--ot-pairing"],
        ),
        (
            "T --data toy:L=2,K=3 --method linear --ot exact --out new.safetensors",
            &["--ot", "linear"],
        ),
        (
            "T --data toy:L=2,K=3 --method dirichlet --ot sinkhorn --out new.safetensors",
            &["--ot", "dirichlet"],
        ),
        (
            "T --data toy:L=2,K=3 --method dirac --out new.safetensors",
            &["--method"],
        ),
        (
            "T --data toy:L=2,K=2000 --method dirichlet --out new.safetensors",
            &["--method dirichlet", "K = 2000"],
        ),
        (
            "T --data toy:L=2,K=3 --lr-schedule sometimes --out new.safetensors",
            &["--lr-schedule"],
        ),
        ("toy-bench --protocol paper --k 5 --cpu", &["--state"]),
        ("toy-bench --protocol fast --k 5 --cpu", &["--protocol"]),
        (
            "toy-bench --methods fisher-flow,dfm --k 5 --cpu",
            &["--methods", "dfm"],
        ),
        (
            "toy-bench --k 5 --methods linear-FM --ot-pairing sample --cpu",
            &["--ot-pairing"],
        ),
        (
            "toy-bench --k 5 --cpu --state existing.txt",
            &["--state", "existing.txt"],
        ),
        (
            "toy-bench --k 2000 --methods dirichlet-FM --cpu",
            &["--k", "K = 2000"],
        ),
        (
            "toy-bench --k 5 --lr-schedule plateaux --cpu",
            &["--lr-schedule"],
        ),
        ("toy-bench --k 5 --batch MAX --cpu", &["--batch"]),
        ("data dna:L=128 --n MAX --out new.fa", &["--n"]),
        // numeric flags: NaN, infinities, negative, too large for f32
        (
            "T --data toy:L=2,K=3 --clip nan --out new.safetensors",
            &["--clip"],
        ),
        (
            "T --data toy:L=2,K=3 --clip -5 --out new.safetensors",
            &["--clip"],
        ),
        (
            "T --data toy:L=2,K=3 --lr nan --out new.safetensors",
            &["--lr"],
        ),
        (
            "T --data toy:L=2,K=3 --lr inf --out new.safetensors",
            &["--lr"],
        ),
        (
            "T --data toy:L=2,K=3 --lr 0 --out new.safetensors",
            &["--lr"],
        ),
        (
            "T --data toy:L=2,K=3 --lr 1e300",
            &["--lr", "too large for f32"],
        ),
        (
            "T --data toy:L=2,K=3 --weight-decay -1",
            &["--weight-decay"],
        ),
        (
            "T --data toy:L=2,K=3 --ot sinkhorn --ot-eps -0.1",
            &["--ot-eps"],
        ),
        (
            "T --data toy:L=2,K=3 --ot sinkhorn --ot-iters 0",
            &["--ot-iters"],
        ),
        (
            "T --data toy:L=2,K=3 --steps -3 --out new.safetensors",
            &["--steps"],
        ),
        ("sdflow --target ring8 --sigma-max nan", &["--sigma-max"]),
        ("sdflow --target ring8 --eta -1", &["--eta"]),
        ("sdflow --target ring8 --bandwidth 0", &["--bandwidth"]),
        ("sdflow --target ring8 --mode model --lr inf", &["--lr"]),
        // choices
        ("S --cpu --out new.txt --format bogus", &["--format"]),
        ("S --cpu --out new.txt --solver heun", &["--solver"]),
        ("S --cpu --out new.txt --precision f8", &["--precision"]),
        (
            "T --data toy:L=2,K=3 --lr-schedule sawtooth",
            &["--lr-schedule"],
        ),
        (
            "T --data toy:L=2,K=3 --ot maybe --out new.safetensors",
            &["--ot"],
        ),
        (
            "T --data toy:L=2,K=3 --method curved --out new.safetensors",
            &["--method"],
        ),
        (
            "T --data ids.txt --format xml --out new.safetensors",
            &["--format"],
        ),
        ("train sometimes", &["preset", "PRESET"]),
        ("sdflow --target ring8 --mode both", &["--mode"]),
        (
            "sdflow --target ring8 --mode model --activation relu6",
            &["--activation"],
        ),
        (
            "T --data toy:L=2,K=3 --cpu --gpu --out new.safetensors",
            &["--cpu", "--gpu"],
        ),
        (
            "S --cpu --out new.txt --precision f16",
            &["--precision", "f16"],
        ),
        // data files
        (
            "T --data ragged.txt --out new.safetensors",
            &["ragged.txt:2"],
        ),
        ("T --data words.txt --out new.safetensors", &["words.txt:2"]),
        (
            "T --data negative.txt --out new.safetensors",
            &["negative.txt:1"],
        ),
        ("T --data empty.txt --out new.safetensors", &["empty.txt"]),
        ("T --data blank.txt --out new.safetensors", &["blank.txt"]),
        ("T --data binary.txt --out new.safetensors", &["binary.txt"]),
        (
            "T --data missing.txt --out new.safetensors",
            &["missing.txt"],
        ),
        ("T --data adir --out new.safetensors", &["adir"]),
        (
            "T --data bad_char.fa --alphabet ACGT --out new.safetensors",
            &["bad_char.fa:4"],
        ),
        (
            "T --data no_header.fa --alphabet ACGT --out new.safetensors",
            &["no_header.fa:1"],
        ),
        (
            "T --data empty_record.fa --alphabet ACGT",
            &["empty_record.fa:1"],
        ),
        (
            "T --data half_labels.fa --alphabet ACGT",
            &["half_labels.fa"],
        ),
        ("T --data acgt.fa --out new.safetensors", &["--alphabet"]),
        (
            "T --data acgt.fa --alphabet AACGT --out new.safetensors",
            &["--alphabet"],
        ),
        (
            "T --data acgt.fa --alphabet '' --out new.safetensors",
            &["--alphabet"],
        ),
        ("sdflow --target points.txt", &["points.txt"]),
        ("sdflow --target nowhere.txt", &["nowhere.txt"]),
        (
            "eval --samples missing.txt --data toy:L=2,K=3",
            &["missing.txt"],
        ),
        (
            "eval --samples ragged.txt --data toy:L=2,K=3",
            &["ragged.txt"],
        ),
        (
            "eval --samples ids.txt --data toy:L=2,K=3",
            &["ids.txt", "length"],
        ),
        ("eval --samples ids.txt", &["--data"]),
        // the likelihood
        ("N --data toy:L=3,K=3", &["--data", "--model"]),
        ("N --data toy:L=2,K=4", &["--data", "--model"]),
        ("N --data ids.txt", &["--data", "--model"]),
        ("N --data ragged.txt", &["ragged.txt"]),
        (
            "N --data toy:L=2,K=3 --div hutchinson --probes 0",
            &["--probes"],
        ),
        (
            "N --data toy:L=2,K=3 --div hutchinson --probes MAX",
            &["--probes"],
        ),
        ("N --data toy:L=2,K=3 --steps 0", &["--steps"]),
        ("N --data toy:L=2,K=3 --steps MAX", &["--steps"]),
        ("N --data toy:L=2,K=3 --eps NaN", &["--eps"]),
        ("N --data toy:L=2,K=3 --eps 1.5", &["--eps"]),
        ("N --data toy:L=2,K=3 --eps 0", &["--eps"]),
        ("N --data toy:L=2,K=3 --rtol inf", &["--rtol"]),
        ("N --data toy:L=2,K=3 --max-seqs 0", &["--max-seqs"]),
        ("N --data toy:L=2,K=3 --div nope", &["--div"]),
        ("N", &["--data"]),
        ("nll --cpu --data toy:L=2,K=3", &["--model"]),
        (
            "nll --cpu --model missing.safetensors --data toy:L=2,K=3",
            &["missing.safetensors"],
        ),
        (
            "nll --cpu --model corrupt.safetensors --data toy:L=2,K=3",
            &["corrupt.safetensors", "--model"],
        ),
        (
            "nll --cpu --model wide.safetensors --data toy:L=3,K=400",
            &["--div exact"],
        ),
        (
            "N --data toy:L=2,K=3 --class 0",
            &["--class", "unconditional"],
        ),
        (
            "nll --cpu --model cond.safetensors --data dna:L=6,classes=2 --class 2",
            &["--class 2"],
        ),
        (
            "nll --cpu --model cond.safetensors --data toy:L=6,K=4",
            &["--labels", "--class"],
        ),
        (
            "nll --cpu --model cond.safetensors --data dna:L=6,classes=3",
            &["has class 2"],
        ),
        (
            "eval --samples ids.txt --data ids.txt --labels ids.txt",
            &["--labels"],
        ),
        // checkpoints
        (
            "sample --cpu --model corrupt.safetensors --out new.txt",
            &["corrupt.safetensors"],
        ),
        (
            "sample --cpu --model short.safetensors --out new.txt",
            &["short.safetensors"],
        ),
        (
            "sample --cpu --model missing.safetensors --out new.txt",
            &["missing.safetensors"],
        ),
        ("sample --cpu --model ids.txt --out new.txt", &["ids.txt"]),
        (
            "train --resume --cpu --out corrupt.safetensors",
            &["corrupt.safetensors"],
        ),
        (
            "train --resume --cpu --out missing.safetensors",
            &["missing.safetensors"],
        ),
        (
            "train --resume --cpu --out m.safetensors --data toy:L=2,K=4",
            &["--accept-changed-data"],
        ),
        (
            "train --resume --cpu --out m.safetensors --data toy:L=2,K=3,seed=5",
            &["--accept-changed-data"],
        ),
        // outputs: existing files, the input itself, non-regular files, missing directories
        ("S --cpu --out existing.txt", &["existing.txt", "--force"]),
        (
            "sample --cpu --model m.safetensors --out link.txt",
            &["link.txt", "--force"],
        ),
        (
            "sample --cpu --model m.safetensors --out m.safetensors --force",
            &["m.safetensors"],
        ),
        (
            "sample --cpu --model m.safetensors --out adir --force",
            &["adir", "directory"],
        ),
        (
            "sample --cpu --model m.safetensors --out /dev/null --force",
            &["/dev/null"],
        ),
        (
            "sample --cpu --model m.safetensors --out nodir/x.txt",
            &["nodir"],
        ),
        (
            "sample --cpu --model m.safetensors --out new.txt --format chars",
            &["--format"],
        ),
        (
            "train toy --out m.safetensors",
            &["m.safetensors", "--force"],
        ),
        (
            "train --data toy:L=2,K=3 --out m.safetensors",
            &["m.safetensors", "--force"],
        ),
        ("T --data ids.txt --out ids.txt --force", &["ids.txt"]),
        ("T --data toy:L=2,K=3 --out adir --force", &["adir"]),
        (
            "T --data toy:L=2,K=3 --out /dev/null --force",
            &["/dev/null"],
        ),
        (
            "T --data toy:L=2,K=3 --loss-curve nodir/loss.svg",
            &["--loss-curve", "nodir"],
        ),
        (
            "T --data toy:L=2,K=3 --loss-curve existing.txt",
            &["existing.txt", "--force"],
        ),
        (
            "sdflow --target ring8 --plot existing.txt",
            &["existing.txt", "--force"],
        ),
        ("sdflow --target ring8 --plot nodir/p.svg", &["nodir"]),
        (
            "toy-bench --k 5 --cpu --chart existing.txt",
            &["existing.txt", "--force"],
        ),
        (
            "data dna:L=16 --n 4 --out existing.txt",
            &["existing.txt", "--force"],
        ),
        ("data dna:L=16 --n 4 --out nodir/x.fa", &["nodir"]),
        // missing or contradictory arguments
        ("train", &["--data", "toy"]),
        (
            "train --accept-changed-data --data toy:L=2,K=3",
            &["--resume"],
        ),
        ("sample --out new.txt", &["--model"]),
        ("bench --only nothing", &["nothing"]),
        (
            "--adapter no-such-adapter-name devices",
            &["no-such-adapter-name"],
        ),
    ];
    fixed
        .into_iter()
        .map(|(a, needles)| {
            let a = a.replace("MAX", MAX);
            let a = match a.split_once(' ') {
                Some(("T", rest)) => format!("{t} {rest}"),
                Some(("S", rest)) => format!("{s} {rest}"),
                Some(("N", rest)) => format!("{n} {rest}"),
                None if a == "N" => n.to_string(),
                _ => a,
            };
            (a, needles)
        })
        .collect()
}

/// Splits a case into arguments (single quotes group words, `''` is an empty argument).
fn split(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in args.split(' ') {
        out.push(if part == "''" {
            String::new()
        } else {
            part.to_string()
        });
    }
    out
}

#[test]
fn every_bad_input_is_refused_with_its_flag_named_and_nothing_touched() {
    let d = fixture();
    let all = cases();
    assert!(all.len() >= 60, "{} cases", all.len());
    let mut failures = Vec::new();
    for (args, needles) in &all {
        let before = snapshot(&d);
        let argv = split(args);
        let o = run_in(&d, &argv, Duration::from_secs(60));
        let t = text(&o);
        let code = o.status.code();
        let mut why = Vec::new();
        if o.status.success() {
            why.push("succeeded".to_string());
        }
        if matches!(code, Some(101) | Some(134)) || code.is_none() {
            why.push(format!("exit {code:?}"));
        }
        if t.contains("panicked") {
            why.push("panicked".into());
        }
        if !needles.iter().any(|n| t.contains(n)) {
            why.push(format!("no mention of {needles:?}"));
        }
        if snapshot(&d) != before {
            why.push("files changed".into());
        }
        if !why.is_empty() {
            failures.push(format!("{args}: {}\n{t}", why.join(", ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
    std::fs::remove_dir_all(&d).ok();
}

fn train_args(out: &str, steps: u64) -> Vec<String> {
    format!(
        "train --data toy:L=2,K=3 --hidden 8 --batch 8 --cpu --eval-samples 0 --log-every 1000000 \
         --lr-schedule constant --checkpoint-every 0 --steps {steps} --out {out}"
    )
    .split(' ')
    .map(String::from)
    .collect()
}

#[cfg(unix)]
#[test]
fn sigterm_stops_train_with_a_checkpoint_that_resumes() {
    let d = tmpdir("bad-sigterm");
    let child = Command::new(env!("CARGO_BIN_EXE_fisherflow"))
        .current_dir(&d)
        .args(train_args("m.safetensors", 100_000_000))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training runs, then stop it.
    std::thread::sleep(Duration::from_secs(3));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let o = child.wait_with_output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(128 + 15), "{t}");
    assert!(t.contains("SIGTERM") && t.contains("--resume"), "{t}");
    let names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec!["m.safetensors".to_string()], "temporaries left");
    let ck = fisherflow::checkpoint::Checkpoint::load(d.join("m.safetensors")).unwrap();
    let step: u64 = ck.meta("fisherflow.step").unwrap().parse().unwrap();
    assert!(step > 0, "no step was trained");
    // Resume for ten more steps; the resumed run ends where one uninterrupted run ends.
    let mut resume = train_args("m.safetensors", step + 10);
    resume.push("--resume".into());
    let o = run_in(&d, &resume, Duration::from_secs(60));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("at step {step}")),
        "{}",
        text(&o)
    );
    let o = run_in(
        &d,
        &train_args("straight.safetensors", step + 10),
        Duration::from_secs(600),
    );
    assert!(o.status.success(), "{}", text(&o));
    let a = fisherflow::checkpoint::Checkpoint::load(d.join("m.safetensors")).unwrap();
    let b = fisherflow::checkpoint::Checkpoint::load(d.join("straight.safetensors")).unwrap();
    assert_eq!(
        a.tensors, b.tensors,
        "the resumed run differs from an uninterrupted one"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn identical_runs_write_identical_checkpoints_at_exact_intervals() {
    let d = tmpdir("bad-repro");
    for out in ["a.safetensors", "b.safetensors"] {
        let mut args = train_args(out, 7);
        let i = args.iter().position(|a| a == "--checkpoint-every").unwrap();
        args[i + 1] = "3".into();
        let o = run_in(&d, &args, Duration::from_secs(60));
        assert!(o.status.success(), "{}", text(&o));
    }
    let a = std::fs::read(d.join("a.safetensors")).unwrap();
    let b = std::fs::read(d.join("b.safetensors")).unwrap();
    assert!(a == b, "two identical runs wrote different bytes");
    std::fs::remove_dir_all(&d).ok();
}

#[cfg(unix)]
#[test]
fn checkpoints_fall_exactly_on_their_interval_and_a_killed_save_leaves_nothing_behind() {
    let d = tmpdir("bad-every");
    let mut args = train_args("m.safetensors", 100_000_000);
    let i = args.iter().position(|a| a == "--checkpoint-every").unwrap();
    args[i + 1] = "7".into();
    for _ in 0..2 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fisherflow"))
            .current_dir(&d)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(3));
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        child.wait().unwrap();
        let ck = fisherflow::checkpoint::Checkpoint::load(d.join("m.safetensors")).unwrap();
        let step: u64 = ck.meta("fisherflow.step").unwrap().parse().unwrap();
        assert!(
            step > 0 && step.is_multiple_of(7),
            "checkpoint at step {step}"
        );
        if !args.iter().any(|a| a == "--resume") {
            args.push("--resume".into());
        }
    }
    // A temporary left by a killed save is removed by the next save of the same file.
    std::fs::write(d.join(".m.safetensors.tmp.999999999.0"), b"partial").unwrap();
    let mut resume = train_args("m.safetensors", 1);
    resume.push("--resume".into());
    let o = run_in(&d, &resume, Duration::from_secs(60));
    assert!(o.status.success(), "{}", text(&o));
    let mut more = args.clone();
    let i = more.iter().position(|a| a == "--steps").unwrap();
    let ck = fisherflow::checkpoint::Checkpoint::load(d.join("m.safetensors")).unwrap();
    let step: u64 = ck.meta("fisherflow.step").unwrap().parse().unwrap();
    more[i + 1] = (step + 1).to_string();
    let o = run_in(&d, &more, Duration::from_secs(60));
    assert!(o.status.success(), "{}", text(&o));
    let names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec!["m.safetensors".to_string()]);
    std::fs::remove_dir_all(&d).ok();
}
