"""Run a function in P local processes joined by a gloo process group: a small torchrun for
the tests and the benchmarks (``fn`` must be importable by name: a module-level function).

    results = run_ranks(fn, 2, arg)   # [fn(0, arg) in rank 0's process, fn(1, arg) in rank 1's]

Each process gets torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT),
one torch thread and ``$GNN_DIST_TIMEOUT`` = ``timeout`` seconds. A rank that raises returns
``RankFailed(message)``; a rank that exits without a result returns ``RankExited(code)``.
Processes still alive after ``deadline`` seconds are killed, and the call fails: a test here can
never hang.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_module
import socket
import time
import traceback
from dataclasses import dataclass


@dataclass
class RankFailed:
    kind: str
    message: str


@dataclass
class RankExited:
    code: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(fn, rank, world, port, timeout, args, env, queue):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), GNN_DIST_TIMEOUT=str(timeout), **env)
    import torch

    torch.set_num_threads(1)
    try:
        result = fn(rank, *args)
    except BaseException as exc:  # reported to the parent, which decides
        result = RankFailed(type(exc).__name__, f"{exc}\n{traceback.format_exc()}")
    queue.put((rank, result))
    queue.close()
    queue.join_thread()
    import torch.distributed as dist

    if dist.is_initialized() and not isinstance(result, RankFailed):
        dist.destroy_process_group()


def run_ranks(fn, world_size: int, *args, timeout: float = 20.0, deadline: float = 240.0,
              env_of_rank=None):
    """``[fn(rank, *args) for each rank]``, each in its own process (module docstring).
    ``env_of_rank(rank)`` may add environment variables to a rank."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = []
    for rank in range(world_size):
        env = env_of_rank(rank) if env_of_rank else {}
        p = ctx.Process(target=_child, args=(fn, rank, world_size, port, timeout, args, env, queue))
        p.start()
        procs.append(p)
    results = {}
    end = time.monotonic() + deadline
    while len(results) < world_size and time.monotonic() < end:
        try:
            rank, result = queue.get(timeout=0.5)
            results[rank] = result
        except queue_module.Empty:
            if all(not p.is_alive() for p in procs) and queue.empty():
                break
    for p in procs:
        p.join(timeout=max(0.0, end - time.monotonic()))
    hung = [r for r, p in enumerate(procs) if p.is_alive()]
    for r in hung:
        procs[r].kill()
        procs[r].join()
    if hung:
        raise RuntimeError(f"ranks {hung} were still running after {deadline} s (killed)")
    return [results.get(r, RankExited(procs[r].exitcode)) for r in range(world_size)]


def unwrap(results):
    """The results, or a RuntimeError quoting the first failed rank."""
    for r, res in enumerate(results):
        if isinstance(res, (RankFailed, RankExited)):
            raise RuntimeError(f"rank {r} failed: {res}")
    return results
