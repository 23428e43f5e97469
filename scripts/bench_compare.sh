#!/usr/bin/env bash
# Ours vs the PyTorch references (scripts/reference/bench.py: typical, careful and, on CUDA,
# best = the whole step as one CUDA graph) on the same machine: runs them alternately (ours,
# typical, careful, best, ours, ...) for each depth, collects their CSV lines in one file and
# prints the medians and the ratios of our fastest variant to each (`resnet bench --summarize`).
# On CUDA `ours` times both our eager step (impl `ours`) and our CUDA-graph step (`ours+graph`).
#
#   scripts/bench_compare.sh [--device cpu|cuda] [--depths 20,56] [--iters N] [--warmup W]
#       [--repeats R] [--eval-images N] [--threads T] [--precision fp32|bf16]
#       [--memory-format nchw|nhwc] [--data ARCHIVE] [--impls ours,typical,careful,best]
#       [--careful-args "--optimizer fused ..."] [--graph auto|off|on|both] [--out FILE.csv]
#
# Environment: RESNET_BIN (a prebuilt `resnet` binary; default: build target/release/resnet with
# cargo), PYTHON (default: .venv/bin/python after scripts/setup-bench.sh; on the GPU machine
# PYTHON=/opt/torch/.venv/bin/python3 and nothing is installed), BENCH_KEEP_GOING=1 (a failed
# run is reported and skipped instead of ending the comparison).
# --precision/--memory-format set run.precision/run.memory_format for ours and --bf16/
# --channels-last for the careful and best references (the typical one stays fp32/NCHW, as users
# write it). --graph is `resnet bench --graph` (auto: eager and graph on CUDA, eager on the CPU).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

device=cpu depths=20,56 iters="" warmup="" repeats=3 eval_images="" threads=0
precision=fp32 memfmt=nchw data="$root/../shared/data/cifar10-jpeg.tar.gz"
impls="" careful_args="" out="" graph=auto
die() { echo "error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --depths) depths="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --eval-images) eval_images="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --precision) precision="$2"; shift 2 ;;
    --memory-format) memfmt="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --impls) impls="$2"; shift 2 ;;
    --careful-args) careful_args="$2"; shift 2 ;;
    --graph) graph="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$device" in cpu|cuda) ;; *) die "--device $device: allowed: cpu, cuda" ;; esac
case "$precision" in fp32|bf16) ;; *) die "--precision $precision: allowed: fp32, bf16" ;; esac
case "$memfmt" in nchw|nhwc) ;; *) die "--memory-format $memfmt: allowed: nchw, nhwc" ;; esac
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || die "--repeats $repeats: must be a positive integer"
# Defaults by device: a CPU step of ResNet-56 takes about a second, a GPU step milliseconds.
if [ "$device" = cpu ]; then
  : "${iters:=30}" "${warmup:=5}" "${eval_images:=2000}" "${impls:=ours,typical,careful}"
else
  : "${iters:=300}" "${warmup:=50}" "${eval_images:=10000}" "${impls:=ours,typical,careful,best}"
fi
[[ "$eval_images" =~ ^[1-9][0-9]*$ ]] ||
  die "--eval-images $eval_images: must be a positive integer (resnet bench refuses 0)"

if [ -n "${RESNET_BIN:-}" ]; then
  bin="$RESNET_BIN"
else
  export LIBTORCH="${LIBTORCH:-$root/.libtorch}"
  "$root/scripts/setup-libtorch.sh"
  cargo build --release --quiet --bin resnet
  bin="$root/target/release/resnet"
fi
[ -x "$bin" ] || die "RESNET_BIN=$bin is not an executable"
if [ -n "${PYTHON:-}" ]; then
  py="$PYTHON"
else
  "$root/scripts/setup-bench.sh"
  py="$root/.venv/bin/python"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/bench_compare.XXXXXX")"
trap 'rm -rf "$work"' EXIT
csv="${out:-$work/bench.csv}"
mkdir -p "$(dirname "$csv")"
: > "$csv"

ref_args=(--device "$device" --iters "$iters" --warmup "$warmup" --eval-images "$eval_images"
          --data "$data")
[ "$threads" -gt 0 ] && ref_args+=(--threads "$threads")
careful_extra=()
[ "$precision" = bf16 ] && careful_extra+=(--bf16)
[ "$memfmt" = nhwc ] && careful_extra+=(--channels-last)
# best takes the layout and precision, not --careful-args (its optimizer is fixed: fused SGD).
careful_extra_layout=("${careful_extra[@]}")
# shellcheck disable=SC2206
[ -n "$careful_args" ] && careful_extra+=($careful_args)

# Ours reads the same archive (or synthetic images of CIFAR-10's shape when it is absent).
config_for() {
  local depth="$1" cfg="$work/resnet$1.toml"
  {
    printf 'name = "bench-resnet%s"\n[model]\nfamily = "cifar"\ndepth = %s\n' "$depth" "$depth"
    if [ -f "$data" ]; then
      printf '[data]\ndataset = "image_folder"\npath = "%s"\ncache_dir = "%s/.cache"\n' "$data" "$root"
    else
      printf '[data]\ndataset = "synthetic"\n[data.synthetic]\ntrain = 50000\ntest = 10000\n'
    fi
    printf '[run]\ndevice = "%s"\nthreads = %s\nprecision = "%s"\nmemory_format = "%s"\nout_dir = "%s/run%s"\n' \
      "$device" "$threads" "$precision" "$memfmt" "$work" "$depth"
  } > "$cfg"
  echo "$cfg"
}

# Runs one command, echoes its readable lines (`IMPL: model on ...`), appends its CSV rows (the
# lines after its CSV header: one, or two for ours on CUDA) to $csv.
run_one() {
  local log="$work/last.log"
  if ! "$@" > "$log" 2> "$work/last.err"; then
    cat "$work/last.err" >&2
    if [ "${BENCH_KEEP_GOING:-0}" = 1 ]; then
      echo "  failed (BENCH_KEEP_GOING=1: continuing): $*" >&2
      return 0
    fi
    die "failed: $*"
  fi
  grep -E '^[a-z+]+: resnet' "$log" | sed 's/^/  /'
  grep -E '^(graph / eager|[a-z+]+: host submits)' "$log" | sed 's/^/  /' || true
  awk 'rows { print } /^impl,/ { rows = 1 }' "$log" >> "$csv"
}

echo "bench_compare: device $device, depths $depths, $iters iterations after $warmup warm-up," \
     "$repeats repeats, $precision/$memfmt; load: $(cut -d' ' -f1-3 /proc/loadavg)"
IFS=, read -r -a depth_list <<< "$depths"
IFS=, read -r -a impl_list <<< "$impls"
for depth in "${depth_list[@]}"; do
  cfg="$(config_for "$depth")"
  for r in $(seq 1 "$repeats"); do
    for impl in "${impl_list[@]}"; do
      case "$impl" in
        ours) run_one "$bin" bench --config "$cfg" --iters "$iters" --warmup "$warmup" \
                --eval-images "$eval_images" --graph "$graph" ;;
        typical) run_one "$py" "$root/scripts/reference/bench.py" --impl typical --depth "$depth" \
                "${ref_args[@]}" ;;
        careful) run_one "$py" "$root/scripts/reference/bench.py" --impl careful --depth "$depth" \
                "${ref_args[@]}" "${careful_extra[@]}" ;;
        best) run_one "$py" "$root/scripts/reference/bench.py" --impl best --depth "$depth" \
                "${ref_args[@]}" "${careful_extra_layout[@]}" ;;
        *) die "--impls: unknown '$impl'; allowed: ours, typical, careful, best" ;;
      esac
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" bench --summarize "$csv"
[ -n "$out" ] && echo "wrote $out"
exit 0
