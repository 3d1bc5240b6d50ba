"""Graph-partitioned training across processes on ``torch.distributed`` (docs/DISTRIBUTED.md).

    torchrun --standalone --nproc_per_node 2 -m gnn.train --model ngcf --dataset ml-latest-small

Each rank owns a contiguous, nnz-balanced block of the nodes (:mod:`.partition`): its rows of Â,
its rows of ``E^0`` and their optimiser state; per layer it fetches its halo rows from their
owners (:mod:`.exchange`), then runs the library's kernels on its local CSR (:mod:`.model`).
Losses, dropout masks and metrics are those of one process, whatever the number of processes.
"""
from gnn.distributed.partition import LocalGraph, Partition, local_graph, nnz_balanced_bounds
from gnn.distributed.runtime import DistributedError, launched_world_size
from gnn.distributed.trainer import DistributedTrainer

__all__ = ["DistributedTrainer", "DistributedError", "Partition", "LocalGraph", "local_graph",
           "nnz_balanced_bounds", "launched_world_size"]
