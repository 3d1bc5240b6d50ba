"""Full-ranking evaluation: the chunked :class:`Evaluator`, its dense reference, and the paired
comparison of two models' per-user metrics."""
from gnn.evaluation.compare import paired_test
from gnn.evaluation.evaluator import Evaluator, evaluate_ranking
from gnn.evaluation.ks import METRICS, metric_names, normalize_ks

__all__ = ["Evaluator", "evaluate_ranking", "paired_test", "METRICS", "metric_names",
           "normalize_ks"]
