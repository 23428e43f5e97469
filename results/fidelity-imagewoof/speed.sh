#!/usr/bin/env bash
# Issue 29, the speed side by side: training images/s of ours (`resnet train`, the streamed loader:
# data.workers decoding threads + run.threads intra-op threads) and of the reference
# (scripts/reference/train_imagenet.py: a DataLoader with data.workers worker processes +
# run.threads intra-op threads) on the Imagewoof option-B config, in short windows run
# alternately (ours, ref, ours, ref, ...) so that the load of other work on the machine falls on
# both alike. Each window is a real training run of ITERS iterations with a curves row every
# EVERY iterations; its first row (start-up, first batches) is dropped and the images/s of the
# others (each trainer's own `images_per_s` column: images over the wall time since the row
# before, data waits included) are kept.
#
#   RUNS=$HOME/fidelity-speed BIN=$HOME/fidelity-bin/resnet results/fidelity-imagewoof/speed.sh [ROUNDS]
#
# Prints one line `impl,round,row,images_per_s` per kept row, then the median of each impl.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${RUNS:-$HOME/fidelity-speed}
BIN=${BIN:-$here/target/release/resnet}
PY=${PY:-$here/.venv/bin/python}
CONFIG=${CONFIG:-$here/configs/imagewoof_resnet18_B.toml}
ROUNDS=${1:-2}
ITERS=${ITERS:-12}
EVERY=${EVERY:-4}
mkdir -p "$RUNS"
cd "$RUNS"   # .cache/ (extracted archive) lands here, shared by the rounds
# The same recipe, rows every EVERY iterations and one evaluation at the end; data.path absolute.
data=$(cd "$(dirname "$CONFIG")" && realpath "$(sed -n 's/^path = "\(.*\)"/\1/p' "$CONFIG")")
sed -e "s|^path = .*|path = \"$data\"|" -e "s/^log_every = .*/log_every = $EVERY/" \
    -e "s/^eval_every = .*/eval_every = $ITERS/" -e "s/^checkpoint_every = .*/checkpoint_every = $ITERS/" \
    "$CONFIG" > speed.toml
rows() {  # impl round folder: the images_per_s of every curves row but the first
    tail -n +3 "$3/curves.csv" | awk -F, -v i="$1" -v r="$2" '{print i "," r "," $1 "," $8}'
}
echo "impl,round,row,images_per_s" > speed.csv
for round in $(seq 1 "$ROUNDS"); do
    "$BIN" train --config speed.toml --iterations "$ITERS" --out "$RUNS/ours" --force > ours.log 2>&1
    rows ours "$round" "$RUNS/ours" | tee -a speed.csv
    "$PY" "$here/scripts/reference/train_imagenet.py" --config speed.toml --iterations "$ITERS" \
        --out "$RUNS/ref" --force > ref.log 2>&1
    rows pytorch-reference "$round" "$RUNS/ref" | tee -a speed.csv
done
for i in ours pytorch-reference; do
    grep "^$i," speed.csv | cut -d, -f4 | sort -g | awk -v i="$i" '{v[NR]=$1} END {
        m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "median %s: %.1f images/s over %d rows\n", i, m, NR}'
done
