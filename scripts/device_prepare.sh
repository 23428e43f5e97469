#!/usr/bin/env bash
# Builds the carry folder for scripts/device_check.sh (the CUDA-graph step) on the build machine: the GPU
# machine has no Rust and no internet, so everything it runs that is not in the checkout travels
# in the git-ignored .device/ (at most 64 MiB):
#
#   .device/resnet                 the release binary (stripped)
#   .device/tests/it               the integration-test binary (its CUDA tests: tests/it/cuda_graph.rs,
#                                  tests/it/data_cuda.rs), stripped
#   .device/cifar10-jpeg.tar.gz    the CIFAR-10 JPEG archive (DATA=...; default ../shared/data)
#   .device/commit.txt             the commit (with -dirty if the tree has changes)
#
#   scripts/device_prepare.sh            # then the device call it prints
#   scripts/device_prepare.sh --check    # only check an existing .device/ (sizes, files)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dest="$root/.device"
limit=$(( 64 * 1024 * 1024 ))
die() { echo "device_prepare: $*" >&2; exit 1; }

check() {
  for f in resnet tests/cuda_graph tests/data_cuda cifar10-jpeg.tar.gz commit.txt; do
    [ -e "$dest/$f" ] || die "$dest/$f is missing"
  done
  local total
  total="$(du -sbL "$dest" | cut -f1)"
  echo "device_prepare: $dest holds $(( total / 1024 / 1024 )) MiB (limit 64 MiB):"
  (cd "$dest" && find . -type f -printf '  %8s  %p\n' | sort -k2)
  [ "$total" -le "$limit" ] || die "$dest is $total bytes, over the 64 MiB carry limit"
}

if [ "${1:-}" = --check ]; then
  check
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument '$1' (use --check or nothing)"

data="${DATA:-}"
if [ -z "$data" ]; then
  for c in "$root/../shared/data/cifar10-jpeg.tar.gz"; do
    [ -f "$c" ] && { data="$c"; break; }
  done
fi
[ -n "$data" ] && [ -f "$data" ] || die "no CIFAR-10 JPEG archive found; set DATA=/path/cifar10-jpeg.tar.gz"

export LIBTORCH="${LIBTORCH:-$root/.libtorch}"
"$root/scripts/setup-libtorch.sh"
cargo build --release --quiet --bin resnet
# The test executables: cargo prints their paths in its JSON messages.
py="$(command -v python3 || echo "$root/.venv/bin/python")"
tests_json="$(cargo test --release --no-run --message-format=json --test it 2>/dev/null)"
exes="$(printf '%s\n' "$tests_json" | "$py" -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "test" in m["target"]["kind"]:
        print(m["target"]["name"], m["executable"])
')"
[ -n "$exes" ] || die "cargo test --no-run gave no test executables"

rm -rf "$dest"
mkdir -p "$dest/tests"
cp target/release/resnet "$dest/resnet"
while read -r name exe; do
  cp "$exe" "$dest/tests/$name"
done <<< "$exes"
strip "$dest/resnet" "$dest"/tests/* 2>/dev/null || echo "device_prepare: strip failed; binaries kept unstripped" >&2
cp "$data" "$dest/cifar10-jpeg.tar.gz"
commit="$(git rev-parse --short HEAD)"
[ -z "$(git status --porcelain --untracked-files=no)" ] || commit="$commit-dirty"
echo "$commit" > "$dest/commit.txt"
check
cat <<EOF

device_prepare: ready. The device call (one run, H100, about 9 minutes of the 15):
  run(command="bash scripts/device_check.sh", carry=[".device"], timeout_s=600)
The script finds torch's lib folder itself (python3 -c 'import torch'), writes everything
under \$OUT and ends within its --budget (560 s by default).
EOF
