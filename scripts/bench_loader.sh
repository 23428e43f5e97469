#!/usr/bin/env bash
# The loader comparison of results/bench/loader_imagewoof.md, side by side in one run: `resnet data bench --stream` (§3.4's
# training transform, and decoding alone) against scripts/bench_torchvision.py (torchvision's
# DataLoader + PIL doing the same), both on 1 core (1 decoding worker, 1 torch thread), on the
# Imagewoof JPEGs. Usage: scripts/bench_loader.sh ARCHIVE CACHE_DIR OUT.csv (see results/bench/).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
archive=$1 cache=$2 out=$3
# torchvision and pillow beside the torch of .venv, in a git-ignored folder of the checkout.
tv="$repo/.bench-tv"
[ -d "$tv/torchvision" ] || "$repo/.venv/bin/python" -m pip install --quiet --target "$tv" --no-deps \
  torchvision==0.26.0 pillow numpy
echo "what,images,seconds,images_per_s" > "$out"
"$repo/target/release/resnet" data bench --device cpu --threads 1 --workers 1 --batch-size 64 \
  --iterations 20 --stream "$archive" --cache-dir "$cache" | tee /dev/stderr |
  awk 'NR>1 && /decode|stream/ {n=NF; w=$1; for(i=2;i<=n-3;i++) w=w" "$i; print "resnet " w "," $(n-2) "," $(n-1) "," $n}' >> "$out"
# The torchvision side reads the folder our side extracted this archive into (CACHE/<stem>-<key>,
# found only now that it exists), never another dataset's folder in the same cache.
stem=$(basename "$archive"); stem=${stem%.tar.gz}; stem=${stem%.tgz}
root=""
shopt -s nullglob
for d in "$cache/$stem"-*/; do
  d=${d%/}
  if [ -d "$d/train" ]; then root=$d; break; fi
  inner=$(find "$d" -mindepth 1 -maxdepth 2 -type d -name train 2>/dev/null | head -1 || true)
  if [ -n "$inner" ]; then root=$(dirname "$inner"); break; fi
done
if [ -z "$root" ]; then
  echo "error: no folder $cache/$stem-*/ with train/ after extracting $archive; not comparing" >&2
  exit 1
fi
PYTHONPATH="$tv" "$repo/.venv/bin/python" "$repo/scripts/bench_torchvision.py" "$root" --workers 1 \
  --batches 20 >> "$out"
cat "$out"
