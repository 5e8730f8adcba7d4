#!/usr/bin/env bash
# Issue 19's GPU measurements as one command of about 5 minutes on an H100/H200 (the `device` tool's `run`):
#   1. benchmarks/batched_training.py: ConvNetSI c=32 on 3x32x32 and c=8 on digits, one run, 4 one after another and
#      4 together, in strict float32; then c=32 in TF32 (steps/s against the matmul floor, projected 391 391 steps);
#   2. `bnwd analogue` for 20 Fashion-MNIST epochs (9 380 steps) of the four learning rates trained together: its
#      step rate, the first destabilisations and the four panels (OUT/analogue/figure2.png).
#
#   benchmarks/gpu_session.sh DATA_DIR OUT
#
# DATA_DIR holds the four Fashion-MNIST IDX files (a git-ignored copy, carried); run from the repository root. The
# environment may set PYTHON (default python3), DEVICE (default cuda; cpu for a smoke run), NETS ("c32 c8"; TF32 is
# measured on the first), BENCH_STEPS (100) and ANALOGUE_STEPS (9380).
#
# Results as data (benchmarks/_results.py), in OUT: batched_training_strict.json, batched_training_tf32.json and
# gpu_session.json (the analogue's steps and seconds), each with the command, date and machine; copy them into
# benchmarks/results/ and run benchmarks/results_page.py to put them on docs/results.md.
set -euo pipefail
data=${1:?usage: benchmarks/gpu_session.sh DATA_DIR OUT}
out=${2:?usage: benchmarks/gpu_session.sh DATA_DIR OUT}
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
bench=("$python" benchmarks/batched_training.py --device "$device" --members 4 --steps "${BENCH_STEPS:-100}" --repeats 2)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$out"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"; } | tee "$out/gpu.txt"
nets=${NETS:-c32 c8}
# shellcheck disable=SC2086  # the nets are words
"${bench[@]}" --nets $nets --out "$out/batched_training_strict.json" | tee "$out/benchmark_strict.txt"
"${bench[@]}" --nets "${nets%% *}" --allow-tf32 --out "$out/batched_training_tf32.json" | tee "$out/benchmark_tf32.txt"
steps=${ANALOGUE_STEPS:-9380}
start=$(date +%s)
"$python" -m bnwd.paper_checks.cli analogue --device "$device" --data-dir "$data" --steps "$steps" \
    --out "$out/analogue" --quiet | tee "$out/analogue.txt"
seconds=$(($(date +%s) - start))
echo "analogue: $seconds s for $steps steps of 4 runs together" | tee -a "$out/analogue.txt"
"$python" benchmarks/_results.py "$out/gpu_session.json" gpu_session --command "benchmarks/gpu_session.sh $*" \
    --device "$device" analogue_runs=4 analogue_steps="$steps" analogue_seconds="$seconds"
