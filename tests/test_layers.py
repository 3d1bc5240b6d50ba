"""The package's layers, as docs/ARCHITECTURE.md draws them, checked against every import.

A module may import modules of lower layers (and of its own package), never higher ones, and
each layer's third-party imports stay within the runtime dependencies. The table is the
diagram of docs/ARCHITECTURE.md; a change to one is a change to both.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"gnn.kernels": ROOT / "kernels", "gnn.data": ROOT / "data", "gnn": ROOT / "gnn"}

LAYERS = [  # (module prefix, layer): lower layers are imported by higher ones
    ("gnn.kernels", 0), ("gnn.data", 0),
    ("gnn.checkpoint", 1), ("gnn.loss", 1), ("gnn.evaluation", 1), ("gnn.adjacency", 1),
    ("gnn.models", 2),
    ("gnn.model_io", 3),
    ("gnn.training", 4),
    ("gnn.distributed", 5), ("gnn.reproduction", 5),
    ("gnn.cli", 6),
    ("gnn", 7),  # gnn/__init__.py and the `python -m gnn.train | recommend | reproduce` launchers
]
THIRD_PARTY = {
    "gnn.kernels": {"torch", "triton"},
    "gnn.data": {"numpy", "torch", "scipy"},
}
RUNTIME = {"torch", "triton", "numpy", "scipy", "tqdm", "matplotlib"}  # matplotlib: optional plots
# Spelt in pieces so that a plain grep for these imports (the project's standing check) does
# not match the list itself.
FORBIDDEN = {"torch_" + "geometric", "torch_" + "sparse", "dgl", "rec" + "bole"}


def layer_of(module: str) -> tuple[str, int]:
    best = max((p for p, _ in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return best, dict(LAYERS)[best]


def modules():
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package] + parts)
            if package == "gnn" and parts and parts[0] in ("kernels", "data"):
                continue
            yield name, path, path.name == "__init__.py"


def imports(name: str, path: Path, is_package: bool):
    """Absolute names of everything ``path`` imports (relative imports resolved)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
                names = [module + "." + a.name for a in node.names] if not node.module else [module]
                yield from names
            else:
                yield node.module


ALL = list(modules())


@pytest.mark.parametrize("name,path,is_package", ALL, ids=[m[0] for m in ALL])
def test_imports_follow_the_layers(name, path, is_package):
    own_prefix, own_layer = layer_of(name)
    for target in imports(name, path, is_package):
        top = target.split(".")[0]
        assert top not in FORBIDDEN, f"{name} imports {target}: not a dependency of the package"
        if top != "gnn":
            allowed = THIRD_PARTY.get(own_prefix)
            if allowed is not None and top in RUNTIME:
                assert top in allowed, f"{name} ({own_prefix}) must not import {target}"
            continue
        prefix, layer = layer_of(target)
        if prefix == own_prefix or own_prefix == "gnn":
            continue
        assert layer < own_layer, (f"{name} (layer {own_layer}, {own_prefix}) imports {target} "
                                   f"(layer {layer}, {prefix}): see docs/ARCHITECTURE.md")


def test_every_module_is_in_a_layer():
    assert len(ALL) > 40
    for name, _, _ in ALL:
        layer_of(name)
