"""Shared fixtures. Real datasets are found only through ``gnn.data.data_root()``
(``$GNN_DATA``, else ``~/.cache/gnn``); a test that needs one skips cleanly when it is absent.

    def test_counts(dataset_file):
        ratings = dataset_file("ml-latest-small", "ratings.csv")   # skips if absent
"""
from pathlib import Path

import pytest

from gnn.data import data_root as gnn_data_root
from gnn.data import find_dataset_file

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def require_real_file(*parts: str) -> Path:
    """``data_root() / parts...``, or skip the calling test when it is absent.

    Kept for modules that import it from here; new tests take the ``dataset_file`` fixture.
    """
    path = find_dataset_file(*parts)
    if path is None:
        pytest.skip(f"dataset file not found: {gnn_data_root().joinpath(*parts)} "
                    f"(set $GNN_DATA to the folder holding the datasets)")
    return path


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The dataset folder, ``gnn.data.data_root()``."""
    return gnn_data_root()


@pytest.fixture
def dataset_file():
    """``dataset_file(*parts)``: the path under the data root, or skip the test when absent."""
    return require_real_file
