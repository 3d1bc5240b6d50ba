"""Paper reproduction runs from versioned configs (``python -m gnn.reproduce``)."""
from gnn.reproduction.config import ConfigError, load_config, resolve_dataset, validate_config
from gnn.reproduction.runner import run

__all__ = ["ConfigError", "load_config", "resolve_dataset", "validate_config", "run"]
