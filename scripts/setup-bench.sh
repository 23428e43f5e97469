#!/usr/bin/env bash
# Installs what the PyTorch reference of the benchmark (scripts/reference/bench.py) needs beyond
# torch: torchvision 0.26.0 (the release built against torch 2.11.0), pillow, numpy and safetensors
# 0.8.0 (for scripts/reference/torchvision_logits.py), into the project's .venv. Idempotent: a second call returns at once. Pins torch so pip never swaps it.
# On the GPU machine nothing is needed: /opt/torch/.venv already has torch 2.11.0 + torchvision 0.26.0.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/setup-libtorch.sh"
py=.venv/bin/python
if "$py" - <<'PY' 2>/dev/null
import importlib.metadata as m
for pkg in ("numpy", "pillow", "safetensors"):
    m.version(pkg)
assert m.version("torchvision").startswith("0.26.0"), m.version("torchvision")
assert m.version("torch").startswith("2.11.0"), m.version("torch")
PY
then
  exit 0
fi
echo "setup-bench: installing torchvision==0.26.0, pillow, numpy into .venv ..." >&2
"$py" -m pip install --quiet "torch==2.11.0" "torchvision==0.26.0" pillow numpy "safetensors==0.8.0"
"$py" -c 'import torch, torchvision; print("setup-bench: torch", torch.__version__, "torchvision", torchvision.__version__)' >&2
