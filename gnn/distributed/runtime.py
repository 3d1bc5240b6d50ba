"""The process group of a run: start-up from torchrun's environment, the start-up check that all
ranks run the same thing, and clear errors instead of hangs.

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_process_group` reads them (NCCL on CUDA, gloo on the CPU). Every collective waits at
most ``timeout`` seconds (``$GNN_DIST_TIMEOUT``, default 300): a rank that died or hangs makes
the others fail with :class:`DistributedError` within that time, never wait for ever.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist

TIMEOUT_ENV = "GNN_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0
# Config fields that may differ between ranks (where each rank finds its files, what it shows,
# how many threads its machine gives it).
RANK_LOCAL_FIELDS = ("data_root", "progress", "json", "threads")
# What a rank raises when it refuses to start (bad data, a checkpoint it may not use, ...).
REFUSALS = (ValueError, OSError)


class DistributedError(RuntimeError):
    """A distributed run cannot go on (the message says which rank saw what)."""


def launched_world_size() -> int:
    """``$WORLD_SIZE`` as torchrun sets it (1 when not launched by torchrun)."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"$WORLD_SIZE must be an integer, but got {value!r}") from None


def launched_rank() -> int:
    """``$RANK`` as torchrun sets it (0 when not launched by torchrun)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def under_torchrun() -> bool:
    """Whether torchrun's agent started this process (it sets ``$TORCHELASTIC_RUN_ID``)."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def agree_on_refusal(rank: int, refusal: Optional[BaseException], what: str) -> None:
    """Collective: each rank says whether it refused ``what`` (``refusal``, else None); if any
    did, every rank raises ValueError with the first refusal's message ("rank r: ..." unless all
    ranks refused alike), so that rank 0 can say why and no rank waits for the others in vain."""
    messages = [None] * dist.get_world_size()
    with collectives(rank, what):
        dist.all_gather_object(messages, None if refusal is None else str(refusal))
    refused = [(r, m) for r, m in enumerate(messages) if m is not None]
    if refused:
        first_rank, message = refused[0]
        if len(refused) < len(messages) or len(set(messages)) > 1:
            message = f"rank {first_rank}: {message}"
        raise ValueError(message) from refusal


def collective_timeout(seconds: Optional[float] = None) -> datetime.timedelta:
    """``seconds``, else ``$GNN_DIST_TIMEOUT``, else 300 s."""
    if seconds is None:
        raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
        try:
            seconds = float(raw)
        except ValueError:
            raise ValueError(f"${TIMEOUT_ENV} must be a number of seconds, but got {raw!r}") from None
    if not seconds > 0:
        raise ValueError(f"the collective timeout must be > 0 seconds, but got {seconds}")
    return datetime.timedelta(seconds=seconds)


def init_process_group(device: torch.device, timeout: Optional[float] = None) -> torch.device:
    """Join the run's process group from the environment (unless already joined) and return
    this rank's device (``cuda:$LOCAL_RANK`` for CUDA)."""
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise DistributedError(f"${name} is not set: start distributed runs with "
                                       f"torchrun (docs/DISTRIBUTED.md)")
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=collective_timeout(timeout),
                                device_id=device if device.type == "cuda" else None)
    return device


def dataset_fingerprint(ds) -> dict:
    """Sizes and a SHA-256 of the train / valid / test interactions of a dataset."""
    h = hashlib.sha256()
    for part in (ds.train_csr, ds.valid_csr, ds.test_csr):
        if part is not None:
            h.update(np.ascontiguousarray(part.indptr).tobytes())
            h.update(np.ascontiguousarray(part.indices).tobytes())
        h.update(b"|")
    return {"name": ds.name, "n_users": int(ds.n_users), "n_items": int(ds.n_items),
            "sha256": h.hexdigest()}


def check_same_run(config, dataset, rank: int, group=None) -> None:
    """Collective: raise :class:`DistributedError` on every rank unless all ranks were started
    with the same config (but for :data:`RANK_LOCAL_FIELDS`) and the same dataset."""
    mine = {k: v for k, v in config.to_dict().items() if k not in RANK_LOCAL_FIELDS}
    mine = {"config": mine, "dataset": dataset_fingerprint(dataset)}
    everyone = [None] * dist.get_world_size(group)
    with collectives(rank, "the start-up check"):
        dist.all_gather_object(everyone, mine, group=group)
    problems = []
    for other, theirs in enumerate(everyone):
        if theirs == everyone[0]:
            continue
        for what in ("config", "dataset"):
            for key in sorted(set(theirs[what]) | set(everyone[0][what])):
                a, b = everyone[0][what].get(key), theirs[what].get(key)
                if a != b:
                    problems.append(f"rank {other} has {what} {key}={b!r}, rank 0 {key}={a!r}")
    if problems:
        raise DistributedError(f"rank {rank}: the ranks were not started with the same run: "
                               + "; ".join(problems))


@contextlib.contextmanager
def collectives(rank: int, what: str):
    """Turn a failed or timed-out collective into a :class:`DistributedError` that says so."""
    try:
        yield
    except DistributedError:
        raise
    except (dist.DistError, RuntimeError) as exc:
        if not _is_communication_error(exc):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DistributedError(
            f"rank {rank}: communication with the other ranks failed during {what} "
            f"({type(exc).__name__}: {first[:300]}). Another rank has most likely died or "
            f"hangs (its own output says why); stopping this one.") from exc


_COMMUNICATION_HINTS = ("gloo", "nccl", "connection", "timed out", "timeout", "peer",
                        "socket", "closed", "broken pipe", "store", "unhandled system error")


def _is_communication_error(exc: BaseException) -> bool:
    if isinstance(exc, dist.DistError):
        return True
    text = str(exc).lower()
    return any(hint in text for hint in _COMMUNICATION_HINTS)
