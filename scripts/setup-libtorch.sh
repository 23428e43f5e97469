#!/usr/bin/env bash
# Installs libtorch (PyPI torch==2.11.0, the version tch 0.24 expects) into the project-local .venv
# and links .libtorch -> .venv/.../site-packages/torch. Idempotent: a second call returns at once.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
want="2.11.0"
py="${PYTHON:-python3}"
if [ -x .venv/bin/python ] && [ -e .libtorch/lib/libtorch.so ] && [ -f .libtorch/version.py ] \
   && grep -q "__version__ = '$want" .libtorch/version.py; then
  exit 0
fi
echo "setup-libtorch: installing torch==$want into .venv (about a minute, 4.6 GB) ..." >&2
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install --quiet "torch==$want"
# find_spec locates the package without importing it (no 2-second torch import, no warnings).
torch_dir="$(.venv/bin/python -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("torch").origin).parent)')"
ln -sfn "$torch_dir" .libtorch
echo "setup-libtorch: libtorch $want ready at .libtorch -> $torch_dir" >&2
