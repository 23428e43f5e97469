#!/usr/bin/env bash
# Installs every Python reference the tests use into the project's .venv, beside torch (which
# setup-libtorch.sh provides): numpy and pillow (the PyTorch reference trainer,
# scripts/reference/train.py, and the VOC devkit's algorithm, scripts/reference/voc_eval.py),
# torchvision 0.26.0 (the release built against torch 2.11.0) and safetensors (the --ignored
# torchvision tests: scripts/reference/torchvision_logits.py), and pycocotools (COCO's official
# evaluator: scripts/reference/coco_eval.py, tests/detection_eval.rs).
# Idempotent and quick: returns at once when everything imports at the right versions; pins the
# installed torch so pip never swaps it. scripts/test calls it; where it cannot install (no
# network), the tests that need a reference skip with a message.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$root/.venv/bin/python"
if "$py" - <<'PY' 2>/dev/null
import importlib.metadata as m
import numpy, PIL, safetensors, pycocotools.cocoeval, torchvision
assert m.version("torchvision").startswith("0.26.0"), m.version("torchvision")
PY
then
  exit 0
fi
pins=()
if torch_version="$("$py" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)"; then
  pins+=("torch==$torch_version")
fi
echo "setup-reference: installing numpy, pillow, torchvision==0.26.0, safetensors, pycocotools into .venv ..." >&2
"$py" -m pip install --quiet "${pins[@]}" numpy pillow "torchvision==0.26.0" safetensors pycocotools
