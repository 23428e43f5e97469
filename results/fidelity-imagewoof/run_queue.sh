#!/usr/bin/env bash
# Issue 29: trains the Imagewoof fidelity runs one after another (2 cores: never two at once) and
# evaluates each with 10 crops. Each job is `ours:SEED` (resnet train, then resnet eval --ten-crop)
# or `ref:SEED` (scripts/reference/train_imagenet.py, which ends with its own 10-crop evaluation).
# A job whose run folder already holds summary.csv and a 10-crop eval.csv row is skipped; one of
# ours with a checkpoint but no summary is resumed (`resnet train --resume`), so rerunning the
# same command after a kill continues where it stopped.
#
#   RUNS=$HOME/fidelity-runs BIN=$HOME/fidelity-bin/resnet \
#     results/fidelity-imagewoof/run_queue.sh ours:0 ours:1 ref:0 ours:2 ref:1 ref:2
#
# Environment: RUNS (run folders; default $HOME/fidelity-runs), BIN (our binary; default
# target/release/resnet), PY (python; default .venv/bin/python), CONFIG (default
# configs/imagewoof_resnet18_B.toml), NICE (default 10). Logs: $RUNS/<job>.log.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${RUNS:-$HOME/fidelity-runs}
BIN=${BIN:-$here/target/release/resnet}
PY=${PY:-$here/.venv/bin/python}
CONFIG=${CONFIG:-$here/configs/imagewoof_resnet18_B.toml}
NICE=${NICE:-10}
mkdir -p "$RUNS"
cd "$RUNS" || exit 1   # .cache/ (the extracted archive, the reference's decoded images) lands here

has_ten_crop() { [ -f "$1/eval.csv" ] && grep -q ',10-crop,' "$1/eval.csv"; }

for job in "$@"; do
    who=${job%%:*} seed=${job#*:}
    case $who in ours) dir=$RUNS/ours-s$seed ;; ref) dir=$RUNS/ref-s$seed ;; *) echo "bad job $job" >&2; exit 2 ;; esac
    log=$RUNS/$who-s$seed.log
    if [ -f "$dir/summary.csv" ] && has_ten_crop "$dir"; then
        echo "$(date -u +%T) $job: done already ($dir)"; continue
    fi
    echo "$(date -u +%T) $job: start ($dir, log $log)"
    if [ "$who" = ours ]; then
        if [ ! -f "$dir/summary.csv" ]; then
            if [ -f "$dir/last.safetensors" ]; then
                nice -n "$NICE" "$BIN" train --resume "$dir" >>"$log" 2>&1
            else
                nice -n "$NICE" "$BIN" train --config "$CONFIG" --seed "$seed" --out "$dir" --force >>"$log" 2>&1
            fi || { echo "$(date -u +%T) $job: training failed (see $log)"; continue; }
        fi
        nice -n "$NICE" "$BIN" eval --checkpoint "$dir/last.safetensors" --ten-crop >>"$log" 2>&1 \
            || echo "$(date -u +%T) $job: eval failed (see $log)"
    else
        nice -n "$NICE" "$PY" "$here/scripts/reference/train_imagenet.py" --config "$CONFIG" --seed "$seed" \
            --out "$dir" --force >>"$log" 2>&1 || echo "$(date -u +%T) $job: failed (see $log)"
    fi
    echo "$(date -u +%T) $job: end"
done
