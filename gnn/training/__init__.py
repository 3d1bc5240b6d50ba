"""BPR training: the run's configuration, the trainer, its checkpoints and its summary."""
from gnn.training.config import TrainConfig
from gnn.training.report import write_json
from gnn.training.trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "write_json"]
