"""Fitting a closed-form model (registered with ``kind="closed-form"``: ItemKNN, the graph
filters GF-CF and BSPM) under the library's protocols: no epochs, one fit on the training split,
then the same evaluation as a trained model's (validation, then test with the validation items
excluded too; the given split's test alone). ``python -m gnn.train --model gfcf`` runs it.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from gnn.models import get_model


def split_for(dataset_name: str, split: str) -> str:
    """``auto``: the given split of train.txt / test.txt datasets, else random 0.8/0.1/0.1
    (as :func:`gnn.training.config.resolve_split`)."""
    if split != "auto":
        return split
    from gnn.data import TEXT_DATASETS

    path = Path(dataset_name)
    is_text = dataset_name in TEXT_DATASETS or (path.is_dir() and (path / "train.txt").exists())
    return "given" if is_text else "random"


def fit_closed_form(name: str, options: Optional[dict], dataset, ks=(20,), log=print):
    """``(model, summary)``: the registered closed-form model ``name`` built with ``options``,
    fitted on ``dataset.train_csr`` and evaluated (metrics at every K of ``ks``)."""
    cls = get_model(name, "closed-form")
    try:
        model = cls(**(options or {}))
    except TypeError as exc:  # an argument the constructor does not take
        raise ValueError(f"{name}: {exc}") from None
    train, valid, test = dataset.train_csr, dataset.valid_csr, dataset.test_csr
    log(f"{dataset.name}: {dataset.n_users} users, {dataset.n_items} items, {train.nnz} training "
        f"pairs; {model!r}")
    start = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - start
    summary = {"model": name, "dataset": dataset.name, "training_free": True,
               "protocol": "validation" if valid is not None else "given-split",
               "fit_seconds": fit_seconds, "hyperparameters": model.hyperparameters()}
    if valid is not None:
        metrics = model.evaluate(valid, exclude=[train], ks=ks)
        summary.update({f"valid_{k}": v for k, v in metrics.items() if "@" in k})
    start = time.perf_counter()
    metrics = model.evaluate(test, exclude=[train] + ([valid] if valid is not None else []),
                             ks=ks)
    summary.update({k: v for k, v in metrics.items()})
    summary["eval_seconds"] = time.perf_counter() - start
    summary.update({"n_users": dataset.n_users, "n_items": dataset.n_items, "n_train": train.nnz,
                    "n_valid": valid.nnz if valid is not None else 0, "n_test": test.nnz})
    return model, summary
