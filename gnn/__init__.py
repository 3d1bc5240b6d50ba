"""Graph collaborative filtering on CSR graphs: NGCF, LightGCN and MF-BPR.

    >>> from gnn import NGCF, LightGCN, MF, build_adjacency

The names below load on first use, so that ``import gnn.data`` or ``import gnn.kernels``
does not pull in the models (and the models' kernels) it does not need.
"""
import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Adjacency": "gnn.graph",
    "build_adjacency": "gnn.graph",
    "NGCF": "gnn.models",
    "LightGCN": "gnn.models",
    "MF": "gnn.models",
    "GraphRecommender": "gnn.models",
    "ranking_metrics": "gnn.metrics",
    "evaluate_ranking": "gnn.evaluate",
    "load_dataset": "gnn.data",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gnn' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
