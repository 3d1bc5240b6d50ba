"""Shared fixtures: where the real datasets live (``$GNN_DATA`` or ``../shared/data``)."""
import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def real_data_root() -> Path:
    """The folder holding real datasets: ``$GNN_DATA`` if set, else ``../shared/data``."""
    env = os.environ.get("GNN_DATA")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    return real_data_root()


def require_real_file(*parts: str) -> Path:
    """Path to a real dataset file, skipping the test cleanly when it is absent."""
    path = real_data_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real dataset file not found: {path} (set $GNN_DATA)")
    return path
