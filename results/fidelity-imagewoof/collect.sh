#!/usr/bin/env bash
# Issue 29: makes this folder from the run folders of run_queue.sh: `resnet report` over them
# (seeds_imagenet.* = mean±std per trainer, runs_imagenet.* = per seed, curves_imagenet.*), and
# a copy of each run's small files (curves.csv, summary.csv, eval.csv, config.toml, trainer.toml;
# never a checkpoint), with the machine's run folder written as $RUNS and the data folder as
# ../shared in every copied file.
#
#   RUNS=$HOME/fidelity-runs BIN=target/release/resnet results/fidelity-imagewoof/collect.sh
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
out=$here/results/fidelity-imagewoof
RUNS=${RUNS:-$HOME/fidelity-runs}
BIN=${BIN:-$here/target/release/resnet}
shared=$(cd "$here/../shared" 2>/dev/null && pwd || echo /nonexistent)
"$BIN" report --runs "$RUNS" --out "$out" > "$out/report.txt"
for dir in "$RUNS"/*/; do
    run=$(basename "$dir")
    [ -f "$dir/summary.csv" ] || continue
    mkdir -p "$out/$run"
    for f in curves.csv summary.csv eval.csv config.toml trainer.toml; do
        [ -f "$dir/$f" ] && cp "$dir/$f" "$out/$run/$f"
    done
done
# Machine paths out of every text file written here.
for f in "$out"/report.txt "$out"/*.md "$out"/*.csv "$out"/*/*; do
    [ -f "$f" ] || continue
    case $f in *.png | *.svg | *.sh | */README.md) continue ;; esac
    sed -i -e "s|$RUNS|\$RUNS|g" -e "s|$shared|../shared|g" -e "s|$here|.|g" "$f"
done
