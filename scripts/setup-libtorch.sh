#!/usr/bin/env bash
# Installs libtorch (PyPI torch==2.11.0, the version tch 0.24 expects) into the project-local .venv
# and links .libtorch -> .venv/.../site-packages/torch, plus CCCL's headers (nvidia-cuda-cccl, the
# wheel's cuda-toolkit [cccl] extra) that ProcessGroupNCCL.hpp needs for the NCCL shim of
# csrc/dist_nccl.cpp. Idempotent: a second call returns at once.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
want="2.11.0"
cccl="13.0.85"
py="${PYTHON:-python3}"
# CCCL's <nv/target> beside the CUDA 13 headers; a CPU-only wheel (no nvidia/cu13) needs none.
cccl_ok() { [ ! -d .libtorch/../nvidia/cu13/include ] || [ -f .libtorch/../nvidia/cu13/include/nv/target ]; }
install_cccl() {
  cccl_ok && return 0
  echo "setup-libtorch: installing nvidia-cuda-cccl==$cccl (CUDA headers for the NCCL shim) ..." >&2
  .venv/bin/python -m pip install --quiet --no-deps "nvidia-cuda-cccl==$cccl"
}
if [ -x .venv/bin/python ] && [ -e .libtorch/lib/libtorch.so ] && [ -f .libtorch/version.py ] \
   && grep -q "__version__ = '$want" .libtorch/version.py; then
  install_cccl
  exit 0
fi
echo "setup-libtorch: installing torch==$want into .venv (about a minute, 4.6 GB) ..." >&2
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install --quiet "torch==$want"
# find_spec locates the package without importing it (no 2-second torch import, no warnings).
torch_dir="$(.venv/bin/python -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("torch").origin).parent)')"
ln -sfn "$torch_dir" .libtorch
echo "setup-libtorch: libtorch $want ready at .libtorch -> $torch_dir" >&2
install_cccl
