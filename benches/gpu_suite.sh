#!/usr/bin/env bash
# Everything BENCHMARKS.md records for an adapter, in one run: the tests with the GPU required,
# the full benchmark suite as JSON, a profile of one toy training step, the demo trained on the
# GPU, the f16 sampler against f32 on the demo model, and (when PyTorch is installed) the
# side-by-side comparison. Every output goes to DIR (default: gpu-results/); the script goes on
# past a failing part and prints a summary of exit codes at the end.
#
#   bash benches/gpu_suite.sh [DIR]
#
# QUICK=1 shrinks every part (bench --quick, 100 demo steps, 1024 samples) to check the script
# itself on a slow adapter.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-results}
mkdir -p "$out"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
bin=./target/release/fisherflow
declare -a summary
quick=(); demo=(); n=65536; sbs=(--steps 50 --samples 4096 --repeat 3)
if [ "${QUICK:-0}" = 1 ]; then
    quick=(--quick); demo=(--steps 100 --eval-samples 256); n=1024; sbs=(--steps 5 --samples 128 --repeat 1)
fi

part() { # part NAME FILE COMMAND...: run COMMAND with output to DIR/FILE, record its status
    local name=$1 file=$2
    shift 2
    local t0=$SECONDS
    "$@" >"$out/$file" 2>&1
    local rc=$?
    summary+=("$(printf '%-14s exit %3d  %4ds  %s' "$name" "$rc" $((SECONDS - t0)) "$out/$file")")
    return 0
}

cargo build --release --all-targets >"$out/build.txt" 2>&1 || { cat "$out/build.txt"; exit 1; }
part devices devices.txt "$bin" devices
part tests tests.txt env FISHERFLOW_REQUIRE_GPU=1 cargo test
part bench bench.json "$bin" bench --json "${quick[@]}"
part profile profile.txt ./target/release/examples/profile_step 20 512 512
part demo demo.txt "$bin" train toy --gpu --force --out "$out/toy.safetensors" "${demo[@]}"
for p in f32 f16; do
    part "sample-$p" "sample-$p.txt" "$bin" sample --model "$out/toy.safetensors" --gpu \
        --n "$n" --steps 100 --seed 7 --precision "$p" --out "$out/samples-$p.txt"
    part "eval-$p" "eval-$p.txt" "$bin" eval --samples "$out/samples-$p.txt" --data toy:L=4,K=5
done
if python3 -c 'import torch' 2>/dev/null; then
    part side-by-side side_by_side.txt python3 benches/peers/side_by_side.py "${sbs[@]}"
fi
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
