#!/usr/bin/env bash
# The two toy studies of BENCHMARKS.md: learning-rate schedules against K and budget, and
# sample quality against field evaluations for each solver. Every run appends one row to a
# tab-separated file in DIR and is skipped when its row is already there, so an interrupted
# study continues where it stopped.
#
#   bash benches/toy_study.sh schedules DIR STEPS K[,K...] [SCHEDULES] [SEEDS]
#       fisherflow train on toy:L=4,K=K,seed=0 (the same target for every seed) with each
#       schedule (default constant,cosine,warmup-cosine,plateau) and seed (default 0,1),
#       then samples and scores it as below; rows of DIR/schedules.tsv: steps K schedule
#       seed KL uniform floor training-seconds.
#       The model of each run stays in DIR/models/.
#   bash benches/toy_study.sh solvers DIR K MODEL
#       samples MODEL with euler, midpoint and rk4 at several step counts and dopri5 at
#       several tolerances (--rtol = --atol), and scores each with fisherflow eval; rows of DIR/solvers.tsv:
#       K solver setting evaluations KL uniform floor sampling-seconds.
#   bash benches/toy_study.sh charts DIR
#       the tables (Markdown, on stdout) and charts (docs/toy_schedules_*.svg,
#       docs/toy_solvers_k*.svg) from the two files.
#
# Sizes: HIDDEN (256), BATCH (256), EVAL_SAMPLES (16384), EVAL_STEPS (50 Euler steps for the
# schedule study); METHOD (fisher; linear, dirichlet or fisher-rao-simplex: train --method);
# backend: the CPU (DEVICE=--gpu for the best adapter).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
bin=./target/release/fisherflow
hidden=${HIDDEN:-256} batch=${BATCH:-256} n=${EVAL_SAMPLES:-16384} esteps=${EVAL_STEPS:-50}
device=${DEVICE:---cpu} method=${METHOD:-fisher}

usage() { sed -n "2,24p" "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2
mkdir -p "$dir/models"

# value LABEL FILE: the number after LABEL on the KL lines that fisherflow prints.
value() { awk -v l="$1" 'index($0, l) { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }' "$2"; }

# score K MODEL LOG SAMPLER-FLAGS...: draw EVAL_SAMPLES sequences from MODEL (prior seed 1),
# score them with fisherflow eval against toy:L=4,K=K,seed=0, both outputs appended to LOG;
# sets kl, uniform and floor.
score() {
    local k=$1 model=$2 log=$3 ids
    shift 3
    ids=$(mktemp --suffix=.txt "$dir/samples.XXXXXX")
    "$bin" sample --model "$model" --n "$n" "$@" --seed 1 $device --force --out "$ids" >>"$log" 2>&1
    "$bin" eval --samples "$ids" --data "toy:L=4,K=$k,seed=0" >>"$log" 2>&1
    rm -f "$ids"
    kl=$(value '  samples' "$log") uniform=$(value 'uniform noise' "$log")
    floor=$(value 'exact samples' "$log")
}

# done_row FILE PREFIX: whether FILE has a row starting with PREFIX (tab-separated).
done_row() { [ -f "$1" ] && grep -q "^$2	" "$1"; }

case $cmd in
schedules)
    [ $# -ge 2 ] || usage
    steps=$1 ks=$2 schedules=${3:-constant,cosine,warmup-cosine,plateau} seeds=${4:-0,1}
    out=$dir/schedules.tsv
    for k in ${ks//,/ }; do
        for s in ${schedules//,/ }; do
            for seed in ${seeds//,/ }; do
                key="$steps	$k	$s	$seed"
                done_row "$out" "$key" && continue
                name=$steps-K$k-$s-$seed log=$dir/models/train-$steps-K$k-$s-$seed.txt
                "$bin" train --data "toy:L=4,K=$k,seed=0" --steps "$steps" --hidden "$hidden" \
                    --batch "$batch" --lr-schedule "$s" --seed "$seed" --method "$method" --eval-samples 0 \
                    $device --force --out "$dir/models/$name.safetensors" >"$log" 2>&1
                secs=$(sed -n 's/^trained [0-9]* steps in \([0-9.]*\)s.*/\1/p' "$log")
                score "$k" "$dir/models/$name.safetensors" "$log" --steps "$esteps"
                printf '%s\t%s\t%s\t%s\t%.0f\n' "$key" "$kl" "$uniform" "$floor" "$secs" >>"$out"
                tail -n 1 "$out"
            done
        done
    done
    ;;
solvers)
    [ $# -eq 2 ] || usage
    k=$1 model=$2 out=$dir/solvers.tsv
    runs=()
    for s in 1 2 4 8 16 32 64 128; do runs+=("euler $s"); done
    for s in 1 2 4 8 16 32 64; do runs+=("midpoint $s"); done
    for s in 1 2 4 8 16 32; do runs+=("rk4 $s"); done
    for r in 1e-1 1e-2 1e-3 1e-4 1e-5 1e-6; do runs+=("dopri5 $r"); done
    for run in "${runs[@]}"; do
        read -r solver setting <<<"$run"
        key="$k	$solver	$setting"
        done_row "$out" "$key" && continue
        if [ "$solver" = dopri5 ]; then flags=(--rtol "$setting" --atol "$setting"); else flags=(--steps "$setting"); fi
        log=$dir/models/samples-K$k-$solver-$setting.log
        : >"$log"
        score "$k" "$model" "$log" --solver "$solver" "${flags[@]}"
        evals=$(sed -n 's/.* \([0-9][0-9]*\) field evaluations per sequence.*/\1/p' "$log")
        secs=$(sed -n 's/.* network, \([0-9.]*\)s, .*/\1/p' "$log")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$key" "$evals" "$kl" "$uniform" "$floor" "$secs" >>"$out"
        tail -n 1 "$out"
    done
    ;;
charts)
    cargo run --release --quiet --example toy_study -- "$dir" docs
    ;;
*) usage ;;
esac
