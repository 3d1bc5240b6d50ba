#!/usr/bin/env bash
# The kernel tests (tests/kernels: interpreter suite, sm_80/sm_90 compile tests, torch backend)
# under triton 3.6.0, the version on the GPU machine, while the system keeps its own triton.
#
#   bash scripts/kernel_tests_triton36.sh [extra pytest args]
#
# Builds (once; later runs reuse it) a virtual environment that sees the system packages (torch,
# numpy, the editable gnn install) and overrides only triton. Location: $GNN_TRITON36_VENV,
# default ~/.cache/graphcf/venv-triton36. Needs the package installed editable from this
# checkout (pip install -e .).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${GNN_TRITON36_VENV:-$HOME/.cache/graphcf/venv-triton36}"
PY=python
command -v "$PY" >/dev/null 2>&1 || PY=python3

if ! "$VENV/bin/python" -c 'import sys, triton; sys.exit(triton.__version__ != "3.6.0")' 2>/dev/null; then
    echo "building $VENV (system site packages + triton==3.6.0)"
    "$PY" -m venv --system-site-packages "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check triton==3.6.0
fi

# the gnn.kernels under test must be this checkout's, not another editable install
"$VENV/bin/python" - <<'PY'
import os, sys
import torch, triton
import gnn.kernels
src = os.path.realpath(os.path.dirname(gnn.kernels.__file__))
want = os.path.realpath("kernels")
print(f"triton {triton.__version__}, torch {torch.__version__}, gnn.kernels from {src}")
if triton.__version__ != "3.6.0" or src != want:
    sys.exit(f"expected triton 3.6.0 and gnn.kernels from {want}: run pip install -e . here")
PY

unset TRITON_INTERPRET GNN_KERNEL_BACKEND GNN_SPMM_LONG_THRESHOLD GNN_NGCF_RECOMPUTE_S
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/kernels "$@"
