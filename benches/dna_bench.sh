#!/usr/bin/env bash
# The DNA benchmark of BENCHMARKS.md: on dna:L=128,classes=3, the MLP against the convolutional
# field, unconditional against class-conditional (sampled with guidance 0, 1 and 2), at one
# step budget, trained on the CPU backend; the same conv model's training speed on the GPU path
# (whatever adapter `--gpu` picks: lavapipe here, a software renderer); and, when PyTorch is
# installed, the same conditional conv model in PyTorch (benches/peers/conv_torch.py) on the
# same data, steps, batch and optimizer, scored by the same `fisherflow eval`.
#
#   bash benches/dna_bench.sh [DIR]          # default DIR: dna-results/
#
# Sizes come from the environment: STEPS (1000), BATCH (32), HIDDEN (32 channels of the conv,
# 8× that for the MLP), BLOCKS (4), N (300 samples), SAMPLE_STEPS (50 Euler steps), GPU_STEPS
# (10 timed GPU steps), DATA (20000 training sequences). Every output goes to DIR; the last
# lines are a markdown table of every figure.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dna-results}
mkdir -p "$out"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
bin=./target/release/fisherflow
steps=${STEPS:-1000} batch=${BATCH:-32} hidden=${HIDDEN:-32} blocks=${BLOCKS:-4}
n=${N:-300} ssteps=${SAMPLE_STEPS:-50} gsteps=${GPU_STEPS:-10} ndata=${DATA:-20000}
spec=dna:L=128,classes=3,seed=0
cargo build --release >/dev/null 2>&1
"$bin" data "$spec" --n "$ndata" --seed 1 --force --out "$out/train.fa" >/dev/null
for ((i = 0; i < n; i++)); do echo $((i % 3)); done >"$out/labels.txt"

common=(--data "$out/train.fa" --alphabet ACGT --batch "$batch" --force)
conv=(--arch conv --hidden "$hidden" --blocks "$blocks" --kernel 9)
mlp=(--arch mlp --hidden $((8 * hidden)) --blocks 2)
cond=(--conditional --cond-drop 0.1)

train() { # train NAME ARGS...: train on the CPU backend, keep the log and the peak memory
    local name=$1
    shift
    /usr/bin/time -f 'peak RSS %M KiB' "$bin" train "${common[@]}" --steps "$steps" "$@" --cpu \
        --out "$out/$name.safetensors" >"$out/$name.train.txt" 2>&1
}

score() { # score NAME MODEL SAMPLE-ARGS...: sample on the CPU backend, then eval
    local name=$1 model=$2
    shift 2
    "$bin" sample --model "$out/$model.safetensors" --n "$n" --steps "$ssteps" --cpu --force \
        --out "$out/$name.fa" "$@" >"$out/$name.sample.txt" 2>&1
    "$bin" eval --samples "$out/$name.fa" --data "$spec" --train "$out/train.fa" \
        >"$out/$name.eval.txt" 2>&1
}

train mlp "${mlp[@]}"
score mlp mlp
train conv "${conv[@]}"
score conv conv
train cond "${conv[@]}" "${cond[@]}"
for w in 0 1 2; do
    score "cond-w$w" cond --class "$out/labels.txt" --guidance "$w"
done
# The GPU path's training speed (a short run: on a software renderer it is slow).
"$bin" train "${common[@]}" "${conv[@]}" "${cond[@]}" --steps "$gsteps" --gpu \
    --out "$out/gpu.safetensors" >"$out/gpu.train.txt" 2>&1 || echo "no GPU run" >"$out/gpu.train.txt"
if python3 -c 'import torch' 2>/dev/null; then
    python3 benches/peers/conv_torch.py --data "$out/train.fa" --out "$out/torch" \
        --steps "$steps" --batch "$batch" --hidden "$hidden" --blocks "$blocks" --kernel 9 \
        --conditional --cond-drop 0.1 --samples "$n" --sample-steps "$ssteps" \
        --guidance 1,2 >"$out/torch.json" 2>"$out/torch.err"
    for w in 1 2; do
        "$bin" eval --samples "$out/torch-w$w.fa" --data "$spec" --train "$out/train.fa" \
            >"$out/torch-w$w.eval.txt" 2>&1
    done
fi

# The table: one row per sampled set.
field() { # field FILE PATTERN COLUMN: the COLUMN-th number of the line matching PATTERN
    awk -v c="$3" "/$2/ { n = 0; for (i = 1; i <= NF; i++) if (\$i ~ /^-?[0-9.]+\$/) { n++; if (n == c) { print \$i; exit } } }" "$1"
}
speed() { grep -o '([0-9.]* steps/s)' "$1" | tr -d '()' | cut -d' ' -f1; }
echo
echo "| model | guidance | steps/s | peak RSS MiB | LL/base samples | data | noise | JSD k=1 | k=3 | k=6 | motif hits c0/c1/c2 | cond. accuracy | duplicates |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
row() { # row LABEL GUIDANCE EVAL TRAINLOG
    local e=$3 s rss
    if [ "${4%.json}" = "$4" ]; then
        s=$(speed "$4")
        rss=$(($(grep -o 'peak RSS [0-9]*' "$4" | awk '{print $3}') / 1024))
    else
        s=$(python3 -c "import json;print(round(json.load(open('$4'))['steps_per_s'],2))")
        rss=-
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s/%s | %s | %s |\n' "$1" "$2" \
        "$s" "$rss" "$(field "$e" 'log-likelihood per base' 1)" \
        "$(field "$e" 'log-likelihood per base' 2)" "$(field "$e" 'log-likelihood per base' 3)" \
        "$(field "$e" '1-mer spectrum' 1)" "$(field "$e" '3-mer spectrum' 1)" \
        "$(field "$e" '6-mer spectrum' 1)" "$(field "$e" 'class 0 motifs' 2)" \
        "$(field "$e" 'class 1 motifs' 2)" "$(field "$e" 'class 2 motifs' 2)" \
        "$(field "$e" '^conditional accuracy' 1)" "$(field "$e" '^duplicates' 1)"
}
row "MLP, unconditional" - "$out/mlp.eval.txt" "$out/mlp.train.txt"
row "conv, unconditional" - "$out/conv.eval.txt" "$out/conv.train.txt"
for w in 0 1 2; do
    row "conv, conditional" "$w" "$out/cond-w$w.eval.txt" "$out/cond.train.txt"
done
for w in 1 2; do
    [ -f "$out/torch-w$w.eval.txt" ] && row "PyTorch conv, conditional" "$w" \
        "$out/torch-w$w.eval.txt" "$out/torch.json"
done
echo
echo "GPU path (steps/s include compiling the kernels): $(grep -E '^[0-9]+ parameters|^trained' "$out/gpu.train.txt" | tr '\n' ' ')"
