"""Markdown table of a scripts/speed_before_after.sh run: every round of each version, side by side.

    python scripts/before_after_table.py results/cpu/before_after > results/cpu/before_after/summary.md

Rows are the medians of ``bench.cpu_targets`` (targets.md) and the Gowalla seconds per epoch of
``gnn.reproduce`` (the *-cpu-*ep.json summaries). The last column is after / before, each
version's fastest round (noise only ever adds time): above 1 means the working tree ("after") is
slower.
"""
import json
import re
import sys
from pathlib import Path

_SECONDS = {"s": 1.0, "ms": 1e-3}


def _targets(path: Path) -> dict:
    """{row name: median seconds} from a bench.cpu_targets table."""
    rows = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        match = re.fullmatch(r"([\d.]+) (s|ms)", cells[1]) if len(cells) > 2 else None
        if match:
            rows[cells[0]] = float(match[1]) * _SECONDS[match[2]]
    return rows


def _gowalla(folder: Path) -> dict:
    """{"Gowalla <model> epoch": seconds per epoch} from the reproduce summaries."""
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("*-cpu-*ep.json"))]
    return {f"Gowalla {run['model']} epoch": run["sec_per_epoch"] for run in runs}


def main(out: str) -> None:
    out = Path(out)
    runs = {}  # (version, round) -> {row: seconds}
    for folder in sorted(out.glob("*-*")):
        version, _, number = folder.name.partition("-")
        if folder.is_dir() and version in ("before", "after"):
            runs[version, int(number)] = {**_targets(folder / "targets.md"), **_gowalla(folder)}
    rounds = sorted({r for _, r in runs})
    print((out / "machine.txt").read_text().strip().replace("\n", "  \n"), end="\n\n")
    header = [f"{v} {r}" for r in rounds for v in ("before", "after")]
    print("| seconds (median) | " + " | ".join(header) + " | after / before |")
    print("|---" * (len(header) + 2) + "|")
    for row in runs["after", rounds[0]]:
        cells = [runs[v, r].get(row) for r in rounds for v in ("before", "after")]
        before = [runs["before", r][row] for r in rounds]
        after = [runs["after", r][row] for r in rounds]
        ratio = min(after) / min(before)
        print(f"| {row} | " + " | ".join(f"{c:.3g}" for c in cells) + f" | {ratio:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
