#!/usr/bin/env bash
# The GPU check (the §4.2 training step as one CUDA graph), in ONE call on the GPU
# machine, well under 10 minutes. Run from the repository root with the carry folder built here by
# scripts/device_prepare.sh (.device/: the release binary, the CUDA test binaries, the CIFAR-10
# JPEG archive, the commit):
#
#   OUT=/path/for/results scripts/device_check.sh [--budget SECONDS] [--only a,b,...]
#   scripts/device_check.sh --cpu-dry-run [--budget SECONDS]    # plumbing check, no GPU
#
# Sections, in priority order (each long step under `timeout -s INT`; a section is skipped, and
# says so, when the budget (default 560 s from the start) would be exceeded; when the graphed
# equivalence run fails, the graph parts of the later sections are skipped and eager is timed):
#   env          card, driver, torch, commit -> meta.csv
#   tests        the Rust CUDA tests (tests/it/cuda_graph.rs, tests/it/data_cuda.rs) in the test binary,
#                with --include-ignored (the CUDA tests are #[ignore = "needs CUDA"] elsewhere)
#   equivalence  ResNet-20 on the real JPEGs, 200 iterations (milestone at 100): eager, eager
#                again (noise), graph, graph->eager and eager->graph resumed at 100; curves
#                compared -> equivalence.csv
#   bench20      resnet bench (eager and graph) vs PyTorch typical/careful/best, ResNet-20
#                -> bench_r20.csv (+ .summary.txt)
#   nccl1        bench --nproc 1 (the data-parallel step on NCCL at world size 1) vs the plain
#                eager step, ResNet-20, 3 rounds -> nccl1.csv
#   fullrun      the whole 64k-iteration ResNet-20 schedule with the graph (goal <= 150 s;
#                Ctrl-C'd at its time limit, which still saves and records) -> fullrun.csv
#   concurrency  1, 2, 4 concurrent ResNet-20 runs (graph; eager 1 and 4) and compare --jobs 2
#                -> concurrency.csv
#   bench56      the same bench for ResNet-56 and -110 -> bench_r56_r110.csv
#   profile      torch.profiler on PyTorch's graphed (best) and careful steps, nsys on ours if
#                installed; bf16/channels-last bench rows -> profile/, bench_bf16.csv
# Everything lands in $OUT: meta.csv, steps.csv (each step: exit code, seconds, command), the CSVs
# above (with card, commit and command columns), logs/, SUMMARY.md.
#
# Environment: OUT (required on the GPU machine; the dry run defaults to a temporary folder),
# CARRY (default .device), PYTHON (default python3: /opt/torch/.venv's torch 2.11 on the GPU
# machine), DATA (the JPEG archive; default $CARRY/cifar10-jpeg.tar.gz), WORK (scratch for run
# folders and caches; default a temporary folder, not sent back).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start_s=$SECONDS
budget=560 only="" dry=0
die() { echo "device_check: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) budget="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --cpu-dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ "$budget" =~ ^[0-9]+$ ]] || die "--budget $budget: whole seconds"

carry="${CARRY:-$root/.device}"
py="${PYTHON:-python3}"
if [ "$dry" = 1 ]; then
  out="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/device_check_dry.XXXXXX")}"
  bin="${RESNET_BIN:-$( [ -x "$carry/resnet" ] && echo "$carry/resnet" || echo "$root/target/release/resnet")}"
  dev=cpu
else
  [ -n "${OUT:-}" ] || die "OUT is not set (the folder whose files come back)"
  out="$OUT"
  bin="${RESNET_BIN:-$carry/resnet}"
  dev=cuda
fi
[ -x "$bin" ] || die "no resnet binary at $bin (run scripts/device_prepare.sh here, carry .device)"
work="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/device_check_work.XXXXXX")}"
mkdir -p "$out/logs" "$work"
if [ "$dry" = 1 ]; then
  data="${DATA:-}"   # the dry run uses synthetic images unless DATA names an archive
else
  data="${DATA:-$carry/cifar10-jpeg.tar.gz}"
  [ -f "$data" ] || die "no JPEG archive at $data (DATA=... or carry it in $carry)"
fi
# Absolute: a relative path in a config file would be taken relative to the file's folder.
[ -n "$data" ] && data="$(cd "$(dirname "$data")" && pwd)/$(basename "$data")"

# libtorch: the Python torch's lib folder (same 2.11.0 as the build).
torch_lib="$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)" \
  || die "$py cannot import torch (PYTHON=...)"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONUNBUFFERED=1

commit="$(cat "$carry/commit.txt" 2>/dev/null || git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if command -v nvidia-smi >/dev/null 2>&1 && [ "$dry" = 0 ]; then
  card="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"
else
  card="cpu ($(nproc) cores, dry run)"
fi
export DC_CARD="$card" DC_COMMIT="$commit"
tools=("$py" "$root/scripts/device_tools.py")

steps="$out/steps.csv"
[ -f "$steps" ] || echo "step,exit_code,seconds,command" > "$steps"
remaining() { echo $(( budget - (SECONDS - start_s) )); }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
wanted() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

# step NAME LIMIT_S CMD...: runs CMD under `timeout -s INT` (SIGKILL 15 s later), capped by the
# remaining budget, output in logs/NAME.log; records exit code and seconds. 124: time limit.
step() {
  local name="$1" limit="$2"; shift 2
  local left; left=$(( $(remaining) - 5 ))
  [ "$limit" -gt "$left" ] && limit="$left"
  if [ "$limit" -lt 10 ]; then
    echo "  $name: skipped (budget spent)"
    echo "$name,skipped,0,\"$*\"" >> "$steps"
    return 99
  fi
  local t0=$SECONDS rc
  echo "  $name (limit ${limit} s): $*"
  timeout -s INT -k 15 "$limit" "$@" > "$out/logs/$name.log" 2>&1
  rc=$?
  echo "$name,$rc,$(( SECONDS - t0 )),\"${*//\"/\'}\"" >> "$steps"
  [ "$rc" = 0 ] || { echo "    exit $rc; last lines:"; tail -n 3 "$out/logs/$name.log" | sed 's/^/    /'; }
  return "$rc"
}

# A ResNet config on the JPEG archive (or synthetic images in the dry run).
# config NAME DEPTH ITERATIONS MILESTONES LOG EVAL CKPT
config() {
  local f="$out/configs/$1.toml"
  mkdir -p "$out/configs"
  {
    printf 'name = "%s"\n[model]\nfamily = "cifar"\ndepth = %s\n' "$1" "$2"
    if [ -n "$data" ]; then
      printf '[data]\ndataset = "image_folder"\npath = "%s"\ncache_dir = "%s/cache"\n' "$data" "$work"
    else
      printf '[data]\ndataset = "synthetic"\n[data.synthetic]\ntrain = 2048\ntest = 512\n'
    fi
    printf '[schedule]\niterations = %s\nmilestones = %s\n' "$3" "$4"
    printf '[run]\nseed = 0\ndevice = "%s"\nlog_every = %s\neval_every = %s\ncheckpoint_every = %s\n' \
      "$dev" "$5" "$6" "$7"
  } > "$f"
  echo "$f"
}

graph_flag=true
[ "$dry" = 1 ] && graph_flag=false   # no graphs on the CPU: the dry run checks the plumbing only
graph_ok=1                           # cleared when the graphed equivalence run fails
ref_data=(--data "${data:-/nonexistent}" --cache "$work/refcache")
[ -z "$data" ] && ref_data=(--synthetic)

echo "device_check: $card, commit $commit, budget ${budget} s, out $out, work $work"

# ---------------------------------------------------------------------------------------- env
if wanted env; then
  {
    echo "key,value"
    echo "card,\"$card\""
    echo "commit,$commit"
    echo "date,$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host_cores,$(nproc)"
    echo "binary_sha256,$(sha256sum "$bin" | cut -c1-16)"
    echo "torch,$("$py" -c 'import torch; print(torch.__version__, torch.version.cuda)')"
    [ "$dry" = 0 ] && echo "driver,$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)"
    echo "data,${data:-synthetic}"
  } > "$out/meta.csv"
  [ "$dry" = 0 ] && nvidia-smi > "$out/logs/nvidia-smi.txt" 2>&1
fi
# Extract and decode the JPEGs once, before any section (concurrent runs would race for it).
if [ -n "$data" ]; then
  step data_cache 120 "$bin" data show --config "$(config data_cache 20 1 "[]" 1 1 1)"
fi

# -------------------------------------------------------------------------------------- tests
if wanted tests; then
  echo "tests"
  # The CUDA tests are #[ignore = "needs CUDA"] (ignored by scripts/test on the CPU machines):
  # here they run. The dry run has no CUDA, where they would fail: it runs the others only.
  ignored=(--include-ignored)
  [ "$dry" = 1 ] && ignored=()
  for t in cuda_graph data_cuda; do
    if [ -x "$carry/tests/it" ]; then
      DC_COMMAND="$t" step "test_$t" 150 "$carry/tests/it" "$t::" ${ignored[@]+"${ignored[@]}"} --test-threads=1
    else
      echo "  test_$t: no test binary in $carry/tests (skipped)"
    fi
  done
fi

# -------------------------------------------------------------------------------- equivalence
if wanted equivalence; then
  echo "equivalence"
  its=200; half=100
  [ "$dry" = 1 ] && { its=20; half=10; }
  eq="$(config eq_resnet20 20 $its "[$half]" 10 $half $half)"
  e="$work/eq"
  rm -rf "$e"
  train_eq=("$bin" train --config "$eq")
  step eq_eager 90 "${train_eq[@]}" --cuda-graph false --out "$e/eager"
  step eq_eager2 90 "${train_eq[@]}" --cuda-graph false --out "$e/eager2"
  step eq_graph 90 "${train_eq[@]}" --cuda-graph "$graph_flag" --out "$e/graph"
  step eq_g2e_a 90 "${train_eq[@]}" --cuda-graph "$graph_flag" --iterations $half --out "$e/g2e"
  step eq_g2e_b 90 "$bin" train --resume "$e/g2e" --cuda-graph false --iterations $its \
    --change schedule.iterations
  step eq_e2g_a 90 "${train_eq[@]}" --cuda-graph false --iterations $half --out "$e/e2g"
  step eq_e2g_b 90 "$bin" train --resume "$e/e2g" --cuda-graph "$graph_flag" --iterations $its \
    --change schedule.iterations
  if [ "$dry" = 0 ] && [ ! -f "$e/graph/summary.csv" ]; then
    graph_ok=0
    echo "  the graphed run failed: later sections time eager steps only (see logs/eq_graph.log)"
  fi
  for r in eager eager2 graph g2e e2g; do
    mkdir -p "$out/equivalence/$r"
    cp "$e/$r"/{curves.csv,summary.csv,config.toml} "$out/equivalence/$r/" 2>/dev/null
  done
  if [ -f "$e/eager/curves.csv" ] && [ -f "$e/eager2/curves.csv" ]; then
    noise="$(DC_COMMAND="eager vs eager (noise)" "${tools[@]}" curves "$out/equivalence.csv" eager_vs_eager2 "$e/eager" "$e/eager2" --noise-rel 0 --noise-test 0 | tail -n 1)"
    read -r nrel ntest <<< "$noise"
    for pair in "graph:eager_vs_graph" "g2e:eager_vs_graph_resumed_eager" "e2g:eager_vs_eager_resumed_graph"; do
      r="${pair%%:*}"; label="${pair#*:}"
      [ -f "$e/$r/curves.csv" ] || { echo "  $label: run missing"; continue; }
      DC_COMMAND="compare curves eager vs $r" "${tools[@]}" curves "$out/equivalence.csv" "$label" \
        "$e/eager" "$e/$r" --noise-rel "${nrel:-0}" --noise-test "${ntest:-0}" | sed -n "1s/^/  /p"
    done
  fi
fi

# bench_compare for some depths: bench NAME DEPTHS ITERS WARMUP [extra args]
bench() {
  local name="$1" depths="$2" iters="$3" warm="$4"; shift 4
  local csv="$out/bench_$name.csv"
  step "bench_$name" "${BENCH_LIMIT:-200}" env RESNET_BIN="$bin" PYTHON="$py" BENCH_KEEP_GOING=1 \
    bash "$root/scripts/bench_compare.sh" --device "$dev" \
    --depths "$depths" --iters "$iters" --warmup "$warm" --repeats 1 --eval-images 2000 \
    --data "${data:-/nonexistent}" --out "$csv" --graph "$( [ "$graph_ok" = 1 ] && echo auto || echo off )" "$@"
  [ -s "$csv" ] && "$bin" bench --summarize "$csv" > "$out/bench_$name.summary.txt" 2>&1
  # The rows (no header: the format of `resnet bench`) with card, commit and command appended.
  [ -s "$csv" ] && awk -v c="$card" -v m="$commit" -v d="bench_compare.sh --depths $depths $*" '
    BEGIN { print "impl,model,device,threads,precision,memory_format,batch,iters,train_images_per_s,data_wait_frac,eval_images_per_s,card,commit,command" }
    !/^impl,/ && NF { print $0 ",\"" c "\"," m ",\"" d "\"" }' "$csv" > "$out/bench_$name.annotated.csv"
  return 0
}

# ------------------------------------------------------------------------------------ bench20
if wanted bench20; then
  echo "bench ResNet-20 (ours eager and graph, PyTorch typical/careful/best)"
  if [ "$dry" = 1 ]; then
    BENCH_LIMIT=300 bench r20 20 3 1 --threads 2 --impls ours,careful
  else
    bench r20 20 200 30
  fi
fi

# ------------------------------------------------------------------------------------ nccl1
# The data-parallel step at world size 1 (bench --nproc 1: NCCL, the gradient all-reduce and the
# stop agreement each step) against the plain eager step, alternately, ResNet-20.
if wanted nccl1; then
  echo "data-parallel step at world size 1 (NCCL) vs the plain step, ResNet-20"
  if [ "$dry" = 1 ]; then n1_iters=3 n1_warm=1; else n1_iters=300 n1_warm=30; fi
  n1="$(config nccl1 20 1000 "[500, 750]" 100 1000 1000)"
  for r in 1 2 3; do
    step "nccl1_ddp_$r" 60 "$bin" bench --config "$n1" --nproc 1 --graph off --iters $n1_iters \
      --warmup $n1_warm --eval-images 500 --csv "$out/nccl1.csv"
    step "nccl1_plain_$r" 60 "$bin" bench --config "$n1" --graph off --iters $n1_iters \
      --warmup $n1_warm --eval-images 500 --csv "$out/nccl1.csv"
  done
fi

# ------------------------------------------------------------------------------------ fullrun
if wanted fullrun && [ "$graph_ok" = 0 ]; then
  echo "full ResNet-20 schedule: skipped (the graph failed; eager would take about 8.5 minutes)"
  echo "fullrun,skipped,0,\"graph failed\"" >> "$steps"
elif wanted fullrun; then
  echo "full ResNet-20 schedule with the graph"
  if [ "$dry" = 1 ]; then
    full="$(config full_resnet20 20 40 "[20, 30]" 10 20 20)"
  else
    full="$(config full_resnet20 20 64000 "[32000, 48000]" 100 1000 1000)"
  fi
  rm -rf "$work/full"
  t0=$(now)
  DC_COMMAND="resnet train full_resnet20 --cuda-graph $graph_flag" \
    step fullrun "${FULL_LIMIT:-210}" "$bin" train --config "$full" --cuda-graph "$graph_flag" --out "$work/full"
  rc=$?
  mkdir -p "$out/fullrun"
  cp "$work/full"/{curves.csv,summary.csv,config.toml} "$out/fullrun/" 2>/dev/null
  [ "$rc" = 99 ] || DC_COMMAND="resnet train full_resnet20 --cuda-graph $graph_flag" \
    "${tools[@]}" fullrun "$out/fullrun.csv" "$work/full" "$(since "$t0")" "$rc" | sed 's/^/  /'
fi

# -------------------------------------------------------------------------------- concurrency
# concurrent MODE(graph|eager) JOBS ITERS: JOBS `resnet train` processes at once (seeds 1..JOBS).
concurrent() {
  local mode="$1" jobs="$2" its="$3" g=true pids=() dirs=() i t0
  [ "$mode" = eager ] && g=false
  if [ "$mode" = graph ] && [ "$graph_ok" = 0 ]; then
    echo "  graph x$jobs: skipped (the graph failed)"; return
  fi
  [ "$dry" = 1 ] && g=false
  local cfg; cfg="$(config conc_resnet20 20 "$its" "[]" "$(( its / 10 ))" "$its" "$its")"
  local left; left=$(( $(remaining) - 10 ))
  [ "$left" -lt 30 ] && { echo "  $mode x$jobs: skipped (budget spent)"; echo "conc_${mode}_$jobs,skipped,0,\"\"" >> "$steps"; return; }
  local limit=$(( left < 150 ? left : 150 ))
  t0=$(now)
  for i in $(seq 1 "$jobs"); do
    local d="$work/conc/$mode$jobs-s$i"
    rm -rf "$d"; dirs+=("$d")
    timeout -s INT -k 15 "$limit" "$bin" train --config "$cfg" --cuda-graph "$g" --seed "$i" --out "$d" \
      > "$out/logs/conc_${mode}_${jobs}_s$i.log" 2>&1 &
    pids+=($!)
  done
  local rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  local wall; wall="$(since "$t0")"
  echo "conc_${mode}_$jobs,$rc,$wall,\"$jobs x resnet train --cuda-graph $g --iterations $its\"" >> "$steps"
  DC_COMMAND="$jobs x resnet train conc_resnet20 --cuda-graph $g" \
    "${tools[@]}" concurrency "$out/concurrency.csv" "$mode" "$jobs" "$its" "$wall" "${dirs[@]}" | sed 's/^/  /'
}

if wanted concurrency; then
  echo "concurrent ResNet-20 runs on one GPU"
  its=2000 eits=1000
  [ "$dry" = 1 ] && { its=20; eits=20; }
  concurrent graph 1 $its
  concurrent graph 2 $its
  concurrent graph 4 $its
  concurrent eager 1 $eits
  concurrent eager 4 $eits
  # The same through compare --jobs (plain-20 and ResNet-20 side by side).
  rc20="$(config cmp_resnet20 20 $its "[]" "$(( its / 10 ))" "$its" "$its")"
  DC_COMMAND="resnet compare plain resnet --depths 20 --jobs 2" \
    step compare_jobs2 120 "$bin" compare plain resnet --depths 20 --jobs 2 --quiet --config "$rc20" \
    --cuda-graph "$( [ "$graph_ok" = 1 ] && echo "$graph_flag" || echo false )" --out "$work/cmp" \
    --results "$out/compare_jobs2"
  [ -f "$out/logs/compare_jobs2.log" ] && grep -h "together" "$out/logs/compare_jobs2.log" | sed "s/^/  /"
fi

# ------------------------------------------------------------------------------------ bench56
if wanted bench56; then
  echo "bench ResNet-56 and -110"
  if [ "$dry" = 1 ]; then
    echo "  (dry run: skipped, same code path as bench20)"
  else
    BENCH_LIMIT=200 bench r56_r110 56,110 100 20
  fi
fi

# ------------------------------------------------------------------------------------ profile
if wanted profile; then
  echo "profile: what bounds the graphed step"
  pdir="$out/profile"
  mkdir -p "$pdir"
  if [ "$dry" = 1 ]; then
    step profile_careful 120 "$py" "$root/scripts/reference/bench.py" --impl careful --depth 20 \
      --device cpu --threads 2 --iters 2 --warmup 1 --eval-images 0 "${ref_data[@]}" --torch-profile "$pdir"
  else
    for impl in best careful; do
      step "profile_$impl" 60 "$py" "$root/scripts/reference/bench.py" --impl "$impl" --depth 20 \
        --device cuda --iters 100 --warmup 30 --eval-images 0 "${ref_data[@]}" --torch-profile "$pdir"
    done
    if command -v nsys >/dev/null 2>&1 && [ "$graph_ok" = 1 ]; then
      cfg20="$(config nsys_resnet20 20 1000 "[]" 100 1000 1000)"
      step nsys_ours_graph 60 nsys profile -o "$work/ours_graph" --force-overwrite true --stats=true \
        "$bin" bench --config "$cfg20" --graph on --iters 300 --warmup 20 --eval-images 500
    else
      echo "  nsys not installed: ours is profiled by timing only (bench: graph vs eager)"
    fi
    BENCH_LIMIT=90 bench bf16 20 200 30 --precision bf16 --memory-format nhwc --impls ours,careful,best
  fi
fi

"${tools[@]}" summary "$out" > /dev/null
echo "device_check: done in $(( SECONDS - start_s )) s; results in $out (SUMMARY.md)"
exit 0
