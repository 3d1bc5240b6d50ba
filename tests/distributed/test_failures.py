"""Failures end with a clear message on every surviving rank within the collective timeout,
never a hang: too many ranks for the graph, ranks started differently, a rank that dies or
hangs. (The harness kills anything still running after its deadline and fails the test.)"""
import re

import workers
from gnn.distributed.local import RankExited, RankFailed, run_ranks

TIMEOUT = 4.0  # $GNN_DIST_TIMEOUT of these runs, seconds


def test_more_ranks_than_nodes():
    results = run_ranks(workers.two_nodes_three_items, 4, 4, timeout=TIMEOUT, deadline=120)
    for res in results:
        assert isinstance(res, RankFailed) and res.kind == "ValueError"
        assert "world size 4 is larger than the number of nodes of the graph (3" in res.message


def test_ranks_with_different_configs():
    configs = [workers.tiny_config(), workers.tiny_config(lr=0.02)]
    results = run_ranks(workers.start, 2, configs, ["tiny", "tiny"], timeout=TIMEOUT,
                        deadline=120)
    for rank, res in enumerate(results):
        assert isinstance(res, RankFailed) and res.kind == "DistributedError", res
        first = res.message.splitlines()[0]
        assert first.startswith(f"rank {rank}: the ranks were not started with the same run")
        assert "rank 1 has config lr=0.02, rank 0 lr=0.05" in first


def test_ranks_with_different_datasets():
    configs = [workers.tiny_config()] * 2
    results = run_ranks(workers.start, 2, configs, ["tiny", "tiny-other"], timeout=TIMEOUT,
                        deadline=120)
    for res in results:
        assert isinstance(res, RankFailed) and res.kind == "DistributedError", res
        assert "rank 1 has dataset sha256=" in res.message.splitlines()[0]


def test_a_refusal_on_one_rank_stops_every_rank_with_its_message():
    # Under torchrun only rank 0 prints a refusal: it must know why another rank refused
    # (before, rank 0 went on to the start-up check and failed on a dead peer).
    results = run_ranks(workers.refused_on_one_rank, 2, workers.tiny_config(), timeout=TIMEOUT,
                        deadline=120)
    for res in results:
        assert isinstance(res, RankFailed) and res.kind == "ValueError", res
        assert res.message.startswith("rank 1: dataset 'empty' has no training interactions")


def _survivor_message(res) -> float:
    assert isinstance(res, str) and res.startswith("DistributedError after"), res
    assert "communication with the other ranks failed during a training step" in res
    assert "Another rank has most likely died or hangs" in res
    return float(re.match(r"DistributedError after ([\d.]+)s", res).group(1))


def test_a_rank_that_dies():
    results = run_ranks(workers.dies_at_step, 3, workers.tiny_config(), 1, 3, "exit",
                        timeout=TIMEOUT, deadline=120)
    assert results[1] == RankExited(3)
    for rank in (0, 2):
        assert _survivor_message(results[rank]) < 3 * TIMEOUT  # gloo sees the closed socket


def test_a_rank_that_hangs():
    results = run_ranks(workers.dies_at_step, 2, workers.tiny_config(), 1, 2, "hang",
                        timeout=TIMEOUT, deadline=120)
    assert _survivor_message(results[0]) < 3 * TIMEOUT  # the collective timeout
