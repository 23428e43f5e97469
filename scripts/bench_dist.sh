#!/usr/bin/env bash
# Data-parallel speed on one machine (README, "Several GPUs or machines"): for each config,
# `resnet bench --nproc N --threads 1` (N ranks x 1 intra-op thread, Gloo over 127.0.0.1),
# one rank with N threads and one rank with 1 thread, run one after the other, R rounds; every
# row goes to OUT.csv, every rank-0 line (step time, all-reduce time and share) to OUT.log, and
# the medians are printed.
#
#   scripts/bench_dist.sh [--nproc N] [--iters I] [--warmup W] [--repeats R] [--out PREFIX] CONFIG...
#
# Environment: RESNET_BIN (default target/release/resnet, built if missing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nproc=2 iters=20 warmup=5 repeats=3 out=""
die() { echo "error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --nproc) nproc="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown argument '$1' (see --help)" ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || die "no config given (see --help)"
for n in "$nproc" "$iters" "$repeats"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive integer"
done
[[ "$warmup" =~ ^[0-9]+$ ]] || die "--warmup $warmup: not a whole number"
bin="${RESNET_BIN:-$root/target/release/resnet}"
if [ -z "${RESNET_BIN:-}" ] && [ ! -x "$bin" ]; then
  "$root/scripts/setup-libtorch.sh"
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin resnet
fi
[ -n "$out" ] || out="$(mktemp -d)/bench_dist"
csv="$out.csv" log="$out.log"
: > "$log"
rm -f "$csv"
common=(--iters "$iters" --warmup "$warmup" --eval-images 1 --csv "$csv")
for r in $(seq 1 "$repeats"); do
  for cfg in "$@"; do
    echo "== round $r: $cfg" | tee -a "$log"
    "$bin" bench --config "$cfg" --nproc "$nproc" --threads 1 "${common[@]}" | grep ranks | tee -a "$log"
    "$bin" bench --config "$cfg" --threads "$nproc" --graph off "${common[@]}" | grep '^ours: .*images/s' | tee -a "$log"
    "$bin" bench --config "$cfg" --threads 1 --graph off "${common[@]}" | grep '^ours: .*images/s' | tee -a "$log"
  done
done
echo "rows: $csv; lines: $log"
python3 - "$csv" "$log" <<'PY'
import csv, re, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
shares = {}
for line in open(sys.argv[2]):
    m = re.match(r"(\S+): (\S+) on .*a step takes ([\d.]+) ms, the gradient all-reduce \(([\d.]+) MiB\) alone ([\d.]+) ms", line)
    if m:
        shares.setdefault(m.group(2), []).append((float(m.group(3)), float(m.group(4)), float(m.group(5))))
groups = {}
for r in rows:
    groups.setdefault((r["model"], r["impl"], int(r["threads"])), []).append(float(r["train_images_per_s"]))
print(f"{'model':10} {'setup':24} {'images/s (median)':>18} {'runs':>5}")
for (model, impl, threads), v in sorted(groups.items()):
    ranks = re.search(r"\+(\d+)ranks", impl)
    setup = f"{ranks.group(1)} ranks x {threads} thread" if ranks else f"1 rank x {threads} threads"
    print(f"{model:10} {setup:24} {statistics.median(v):18.1f} {len(v):5}")
for model, v in sorted(shares.items()):
    step = statistics.median(x[0] for x in v)
    ar = statistics.median(x[2] for x in v)
    print(f"{model}: all-reduce of {v[0][1]:.2f} MiB: {ar:.2f} ms median, step {step:.1f} ms: {100 * ar / step:.1f}% of the step")
PY
