"""The recommenders and the one registry of their names (gnn/models/registry.py).

``MODELS`` maps the name used by the CLI, the configs and saved files to the class of each model
trained with BPR, ``BASELINES`` the same for the models fitted in closed form; the CLI's
``--model`` choices, :class:`gnn.TrainConfig`, ``gnn.reproduce``'s configs and
:func:`gnn.load_model` all read them. :func:`register_model` adds a model of your own.
"""
from gnn.models.base import GraphRecommender
from gnn.models.graph_filters import BSPM, GFCF
from gnn.models.itemknn import ItemKNN
from gnn.models.lightgcn import LightGCN
from gnn.models.mf import MF
from gnn.models.ngcf import NGCF
from gnn.models.xsimgcl import XSimGCL
from gnn.models.registry import (BASELINES, MODELS, get_model, model_name, register_model,
                                 unregister_model)

register_model("ngcf", NGCF)
register_model("lightgcn", LightGCN)
register_model("mf", MF)
register_model("xsimgcl", XSimGCL)
register_model("itemknn", ItemKNN, kind="closed-form")
register_model("gfcf", GFCF, kind="closed-form")
register_model("bspm", BSPM, kind="closed-form")

__all__ = ["GraphRecommender", "NGCF", "LightGCN", "MF", "XSimGCL", "ItemKNN", "GFCF", "BSPM",
           "MODELS", "BASELINES",
           "register_model", "unregister_model", "get_model", "model_name"]
