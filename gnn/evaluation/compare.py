"""A paired comparison of two models on the same users: the per-user metric vectors of
:meth:`gnn.Evaluator.evaluate` with ``per_user=True``, two tests of their differences.

* the paired t-test (``scipy.stats.ttest_rel``): is the mean per-user difference zero?
* the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``): does not assume normal differences
  (per-user recall is bounded, often 0, far from normal); pairs with a zero difference are
  dropped (``zero_method="wilcox"``).

Both two-sided. Identical vectors give p = 1; a constant non-zero difference gives p = 0 for
the t-test (its variance is 0).
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def paired_test(a: dict, b: dict, metric: str = "recall@20") -> dict:
    """Compare ``metric`` of two per-user results ``a`` and ``b`` (same users, same order).

    Returns ``{"metric", "n_users", "mean_a", "mean_b", "mean_diff" (a - b), "t_statistic",
    "t_pvalue", "wilcoxon_statistic", "wilcoxon_pvalue"}``.
    """
    for name, result in (("a", a), ("b", b)):
        if not isinstance(result, dict) or "user" not in result:
            raise ValueError(f"paired_test(): {name} must be a per-user result "
                             f"(Evaluator.evaluate(..., per_user=True)), but got "
                             f"{type(result).__name__}")
        if metric not in result:
            known = sorted(k for k in result if k != "user")
            raise ValueError(f"paired_test(): {name} has no metric {metric!r}; it has {known}")
    if not np.array_equal(a["user"], b["user"]):
        raise ValueError("paired_test(): a and b were evaluated on different users; evaluate "
                         "both models with the same Evaluator")
    x, y = np.asarray(a[metric], np.float64), np.asarray(b[metric], np.float64)
    if x.size < 2:
        raise ValueError(f"paired_test(): needs at least 2 users, but got {x.size}")
    diff = x - y
    if not diff.any():
        t_stat, t_p, w_stat, w_p = 0.0, 1.0, 0.0, 1.0
    else:
        if np.all(diff == diff[0]):  # no variance: the t statistic is infinite
            t_stat, t_p = float(np.sign(diff[0]) * np.inf), 0.0
        else:
            t_stat, t_p = (float(v) for v in stats.ttest_rel(x, y))
        w_stat, w_p = (float(v) for v in stats.wilcoxon(x, y, zero_method="wilcox"))
    return {"metric": metric, "n_users": int(x.size), "mean_a": float(x.mean()),
            "mean_b": float(y.mean()), "mean_diff": float(diff.mean()), "t_statistic": t_stat,
            "t_pvalue": t_p, "wilcoxon_statistic": w_stat, "wilcoxon_pvalue": w_p}
