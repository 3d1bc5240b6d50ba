"""The one registry of model names: what ``--model``, configs and saved files call each model.

Two kinds share it. ``"bpr"``: a :class:`~gnn.models.base.GraphRecommender` subclass that
:class:`gnn.Trainer` builds from a config (``from_config``, ``adjacency_options``) and trains
with BPR; checkpoints, :func:`gnn.load_model` and ``python -m gnn.train`` find it here by name.
``"closed-form"``: a model fitted without gradient descent (ItemKNN; training-free graph
filters), which ``gnn.reproduce`` runs. :data:`MODELS` and :data:`BASELINES` are live, read-only
views of the two kinds; :func:`register_model` adds to them (docs/ARCHITECTURE.md, "Adding a
model").
"""
from __future__ import annotations

from typing import Dict, Iterator, Mapping

from gnn.models.base import GraphRecommender

KINDS = ("bpr", "closed-form")
_REGISTRY: Dict[str, tuple] = {}  # name -> (class, kind)


class _KindView(Mapping):
    """The registered names of one kind, in registration order (read-only, always current)."""

    def __init__(self, kind: str):
        self._kind = kind

    def __getitem__(self, name: str) -> type:
        cls, kind = _REGISTRY[name]
        if kind != self._kind:
            raise KeyError(name)
        return cls

    def __iter__(self) -> Iterator[str]:
        return (name for name, (_, kind) in _REGISTRY.items() if kind == self._kind)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"{{{', '.join(f'{n!r}: {c.__name__}' for n, c in self.items())}}}"


#: Models trained with BPR by :class:`gnn.Trainer`, by name.
MODELS: Mapping[str, type] = _KindView("bpr")
#: Models fitted in closed form (no gradient descent), by name.
BASELINES: Mapping[str, type] = _KindView("closed-form")


def register_model(name: str, cls: type, *, kind: str = "bpr", replace: bool = False) -> type:
    """Register ``cls`` under ``name`` (returns ``cls``).

    ``kind="bpr"``: ``cls`` subclasses :class:`gnn.GraphRecommender`; the Trainer, checkpoints,
    resume, :func:`gnn.save_model` / :func:`gnn.load_model` and the CLI's ``--model`` then know
    it (a process that loads its files registers it first). ``kind="closed-form"``: a model
    fitted without gradient descent. A name already taken is an error unless ``replace``.
    """
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f"register_model(): name must be a non-empty string without "
                         f"surrounding spaces, but got {name!r}")
    if kind not in KINDS:
        raise ValueError(f"register_model(): kind must be one of {KINDS}, but got {kind!r}")
    if not isinstance(cls, type):
        raise TypeError(f"register_model(): cls must be a class, but got {type(cls).__name__}")
    if kind == "bpr" and not issubclass(cls, GraphRecommender):
        raise TypeError(f"register_model(): a model trained with BPR must subclass "
                        f"gnn.GraphRecommender, but {cls.__name__} does not")
    if name in _REGISTRY and not replace and _REGISTRY[name][0] is not cls:
        raise ValueError(f"register_model(): {name!r} is already {_REGISTRY[name][0].__name__}; "
                         f"pass replace=True to replace it")
    for other, (registered, _) in _REGISTRY.items():
        if registered is cls and other != name:
            raise ValueError(f"register_model(): {cls.__name__} is already registered as "
                             f"{other!r} (one name per class: saved files name it)")
    _REGISTRY[name] = (cls, kind)
    return cls


def unregister_model(name: str) -> None:
    """Remove ``name`` from the registry (KeyError naming the known ones if absent)."""
    if name not in _REGISTRY:
        raise KeyError(f"no model {name!r} is registered (known: {sorted(_REGISTRY)})")
    del _REGISTRY[name]


def get_model(name: str, kind: str = "bpr") -> type:
    """The class registered as ``name`` for ``kind``; ValueError listing the known names."""
    known = MODELS if kind == "bpr" else BASELINES
    if name in known:
        return known[name]
    if name in _REGISTRY:
        other = _REGISTRY[name][1]
        raise ValueError(f"model {name!r} is a {other} model, not a {kind} one "
                         f"({kind} models: {sorted(known)})")
    raise ValueError(f"unknown model {name!r} (known: {sorted(known)}; register a model of "
                     f"your own with gnn.register_model first)")


def model_name(model) -> str:
    """The registered name of a model instance or class; ValueError if it has none."""
    cls = model if isinstance(model, type) else type(model)
    for name, (registered, _) in _REGISTRY.items():
        if registered is cls:
            return name
    raise ValueError(f"{cls.__name__} is not a registered model (known: {sorted(_REGISTRY)}); "
                     f"register it with gnn.register_model(name, {cls.__name__})")
