#!/usr/bin/env bash
# CPU speed before and after a change, on the same machine, interleaved (issue 19): for each
# round, python -m bench.cpu_targets (ml-latest-small epochs and evaluation) and the Gowalla
# epochs of python -m gnn.reproduce (LightGCN and MF: 2 epochs; NGCF: 1), first at the working
# tree, then at commit BEFORE. Run it on an otherwise idle machine.
#
#   GNN_DATA=... bash scripts/speed_before_after.sh BEFORE OUT [ROUNDS]
#
# OUT/after-<round>/ and OUT/before-<round>/ get targets.md and the reproduce JSONs;
# OUT/machine.txt the machine, the commits and the load average around each round; OUT/summary.md
# the table of both (scripts/before_after_table.py).
# The old commit runs from a throwaway worktree, flattened as setup.py's package_dir installs it
# (kernels/ as gnn/kernels, data/ as gnn/data), with PYTHONPATH pointing at it.
set -euo pipefail
before=$1
out=$(realpath -m "$2")
rounds=${3:-2}
repo=$(git rev-parse --show-toplevel)
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
work=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$work/tree" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$repo" worktree add --force --detach "$work/tree" "$before" >/dev/null
mkdir -p "$work/flat" "$out"
cp -r "$work/tree/gnn" "$work/tree/bench" "$work/tree/configs" "$work/flat/"
cp -r "$work/tree/kernels" "$work/flat/gnn/kernels"
cp -r "$work/tree/data" "$work/flat/gnn/data"

{
    echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    echo "python: $(python --version 2>&1), torch: $(python -c 'import torch; print(torch.__version__)')"
    echo "after: $(git -C "$repo" rev-parse HEAD)$(git -C "$repo" diff --quiet || echo +dirty)"
    echo "before: $(git -C "$repo" rev-parse "$before"), imported from" \
        "$(cd "$work/flat" && PYTHONPATH="$work/flat" python -c \
           'import gnn, gnn.kernels; print(gnn.__file__, gnn.kernels.__file__)')"
} > "$out/machine.txt"

measure() {  # measure VERSION DIR ROUND: cpu_targets and the Gowalla epochs from DIR
    local version=$1 dir=$2 round=$3 dest="$out/$1-$3" model epochs
    mkdir -p "$dest"
    echo "$version round $round start: load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
    (cd "$dir" && python -m bench.cpu_targets --out "$dest/targets.md" > /dev/null)
    for run in "lightgcn 2" "mf 2" "ngcf 1"; do
        read -r model epochs <<< "$run"
        (cd "$dir" && python -m gnn.reproduce "configs/gowalla/$model.json" --epochs "$epochs" \
            --device cpu --out "$dest" > "$dest/$model.log" 2>&1)
    done
    echo "$version round $round end: load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
}

for round in $(seq 1 "$rounds"); do
    measure after "$repo" "$round"
    PYTHONPATH="$work/flat" measure before "$work/flat" "$round"
done
python "$repo/scripts/before_after_table.py" "$out" > "$out/summary.md"
echo "wrote $out (summary.md: the table)"
