"""Graph collaborative filtering on CSR graphs: NGCF, LightGCN, MF-BPR, XSimGCL, and the
training-free graph filters GF-CF and BSPM.

    >>> from gnn import NGCF, build_adjacency, load_dataset
    >>> ds = load_dataset("ml-latest-small")
    >>> model = NGCF(build_adjacency(ds.train_csr))

See the README's "In Python" section and examples/custom_loop.py for a whole training loop, and
docs/ARCHITECTURE.md ("Adding a model") for a model of your own (:func:`register_model`).
"""
from gnn.adjacency import Adjacency, build_adjacency
from gnn.data import PositiveSampler, UniformNegativeSampler, UserItemCSR, load_dataset
from gnn.evaluation import Evaluator, evaluate_ranking
from gnn.loss import bpr_loss
from gnn.model_io import load_model, save_model
from gnn.models import (BSPM, GFCF, MF, NGCF, GraphRecommender, ItemKNN, LightGCN, XSimGCL,
                        register_model)
from gnn.training import TrainConfig, Trainer

__version__ = "0.1.0"

__all__ = [
    "NGCF", "LightGCN", "MF", "XSimGCL", "GFCF", "BSPM", "ItemKNN", "GraphRecommender", "Adjacency", "build_adjacency", "load_dataset",
    "UserItemCSR", "PositiveSampler", "UniformNegativeSampler", "bpr_loss", "Evaluator", "evaluate_ranking",
    "Trainer", "TrainConfig", "save_model", "load_model", "register_model",
]
