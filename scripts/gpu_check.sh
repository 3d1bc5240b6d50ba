#!/usr/bin/env bash
# One command for a CUDA machine: the kernel test suite on the GPU (real Triton compilation),
# then the kernel benchmarks (scripts/kernel_bench.py), written to results/gpu/<gpu>-<date>.md
# (and copied into $OUT when that is set). Budget: ~8 minutes on an H100.
#
#   bash scripts/gpu_check.sh            # from anywhere inside the repo
#   GNN_DATA=/path/to/data bash scripts/gpu_check.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET GNN_KERNEL_BACKEND GNN_SPMM_LONG_THRESHOLD GNN_NGCF_RECOMPUTE_S || true

python - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu_check.sh: no CUDA device visible to torch")
print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
PY
if ! python -c "import gnn.kernels" 2>/dev/null; then
    # package not installed: expose kernels/ as gnn.kernels through a throw-away shim
    shim=$(mktemp -d)
    mkdir -p "$shim/gnn"
    printf '__path__.append(%s)\n' "'$PWD/gnn'" > "$shim/gnn/__init__.py"
    ln -s "$PWD/kernels" "$shim/gnn/kernels"
    export PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}"
    python -c "import gnn.kernels" || { echo "cannot import gnn.kernels"; exit 1; }
fi

gpu=$(python -c "import torch; print(torch.cuda.get_device_name(0).replace(' ', '_').replace('/', '_'))")
stamp=$(date +%Y-%m-%d)
mkdir -p results/gpu
report="results/gpu/${gpu}-${stamp}.md"
log="results/gpu/${gpu}-${stamp}-tests.log"

echo "== 1/2 kernel tests on CUDA (log: $log)"
start=$(date +%s)
set +e
timeout 300 python -m pytest -q -p no:cacheprovider tests/kernels 2>&1 | tee "$log"
tests_rc=${PIPESTATUS[0]}
set -e
echo "tests: exit $tests_rc in $(( $(date +%s) - start )) s"

echo "== 2/2 kernel benchmarks"
start=$(date +%s)
timeout 420 python scripts/kernel_bench.py --out "$report"
echo "benchmarks: $(( $(date +%s) - start )) s"

{ echo; echo "Kernel tests on CUDA: exit code $tests_rc ($(tail -n 1 "$log"))"; } >> "$report"
if [ -n "${OUT:-}" ]; then cp "$report" "$log" "$OUT"/; fi
echo
cat "$report"
exit "$tests_rc"
