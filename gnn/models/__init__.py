"""The recommenders and the one registry of their names.

``MODELS`` maps the name used by the CLI, the configs and saved files to the class of each model
trained with BPR, ``BASELINES`` the same for the closed-form baselines; the CLI's ``--model``
choices, ``gnn.reproduce``'s configs and :func:`gnn.load_model` all read them.
"""
from gnn.models.base import GraphRecommender
from gnn.models.itemknn import ItemKNN
from gnn.models.lightgcn import LightGCN
from gnn.models.mf import MF
from gnn.models.ngcf import NGCF

#: Models trained with BPR by :class:`gnn.Trainer`, by name.
MODELS = {"ngcf": NGCF, "lightgcn": LightGCN, "mf": MF}
#: Baselines fitted in closed form (no gradient descent), by name.
BASELINES = {"itemknn": ItemKNN}


def model_name(model) -> str:
    """The registry name of a model instance or class."""
    cls = model if isinstance(model, type) else type(model)
    for name, registered in MODELS.items():
        if registered is cls:
            return name
    raise ValueError(f"{cls.__name__} is not a registered model (known: {sorted(MODELS)})")


__all__ = ["GraphRecommender", "NGCF", "LightGCN", "MF", "ItemKNN", "MODELS", "BASELINES",
           "model_name"]
