"""The normalised user–item adjacency (docs/DESIGN.md §1): :class:`Adjacency`
(gnn/adjacency/core.py), :func:`build_adjacency`, the normalisation (normalise.py) and the user
formats it is built from (inputs.py: edge lists, scipy matrices)."""
from gnn.adjacency.core import Adjacency, build_adjacency, dropout_keep
from gnn.adjacency.normalise import NORMS

__all__ = ["Adjacency", "build_adjacency", "dropout_keep", "NORMS"]
