"""Full-ranking evaluation: the chunked :class:`Evaluator` and its dense reference."""
from gnn.evaluation.evaluator import Evaluator, evaluate_ranking
from gnn.evaluation.ks import METRICS, metric_names, normalize_ks

__all__ = ["Evaluator", "evaluate_ranking", "METRICS", "metric_names", "normalize_ks"]
