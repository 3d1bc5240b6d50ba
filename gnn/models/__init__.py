"""The recommenders: NGCF, LightGCN and MF-BPR, all built on one training adjacency."""
from gnn.models.base import GraphRecommender
from gnn.models.lightgcn import LightGCN
from gnn.models.mf import MF
from gnn.models.ngcf import NGCF

MODELS = {"ngcf": NGCF, "lightgcn": LightGCN, "mf": MF}

__all__ = ["GraphRecommender", "NGCF", "LightGCN", "MF", "MODELS"]
