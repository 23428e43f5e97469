#!/usr/bin/env bash
# Installs what the independent PyTorch trainer (scripts/reference/train.py) needs beyond
# torch: numpy and pillow, into the project's .venv (torch itself comes from setup-libtorch.sh).
# Idempotent: returns at once when both import. scripts/test calls it; where it cannot install
# (no network), the reference test skips with a message.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$root/.venv/bin/python"
if "$py" -c 'import numpy, PIL' 2>/dev/null; then
  exit 0
fi
echo "setup-reference: installing numpy and pillow into .venv ..." >&2
"$py" -m pip install --quiet numpy pillow
