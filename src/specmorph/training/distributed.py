"""Data-parallel training under torchrun: launch detection, the process group, rank helpers, reductions, sharding.

A process launched by `torchrun` finds WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in
its environment; `setup` joins the process group from them when WORLD_SIZE > 1 and does nothing
otherwise. Every helper here is a no-op (or the identity) without a process group of more than one
process, so a plain `python stages/train.py` runs exactly as before.

`training.loop.train_model` uses the group when one is initialised: each rank takes its shard of the
epoch's seeded order (`shard`, as torch's DistributedSampler), the model is wrapped in
DistributedDataParallel (`wrap_step`), and epoch sums are all-reduced (`all_reduce_sum`).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable

import torch
from torch import distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from specmorph.errors import InputError

logger = logging.getLogger(__name__)

DEVICES: tuple[str, ...] = ("cpu", "cuda")
BACKENDS: tuple[str, ...] = ("auto", "gloo", "nccl")
_device = torch.device("cpu")  # chosen by `setup`


def launched() -> bool:
    """True when the environment says this is one of several processes (torchrun's WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """True when a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """Number of processes in the group (1 without a process group)."""
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    """This process's rank on its node (torchrun's LOCAL_RANK; 0 when not launched by torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def local_world_size() -> int:
    """Processes on this node (torchrun's LOCAL_WORLD_SIZE; 1 when not launched by torchrun)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def is_main() -> bool:
    """True on the process that writes files (rank 0, or the only process)."""
    return rank() == 0


def setup(device: str = "cpu", backend: str = "auto") -> torch.device:
    """Joins the process group when launched with WORLD_SIZE > 1 (env:// rendezvous); sets this rank's device.

    Args:
        device: "cpu", or "cuda" for cuda:LOCAL_RANK (cuda:0 in a single process).
        backend: "auto" (nccl on cuda, gloo on cpu), "gloo" or "nccl".

    Returns:
        The device to train on, also `current_device()` from now on.

    Raises:
        InputError: an unknown device or backend, or "cuda" without a CUDA device.
    """
    if device not in DEVICES:
        raise InputError(f"params.yaml: train.device must be one of {', '.join(DEVICES)}, got {device!r}")
    if backend not in BACKENDS:
        raise InputError(f"params.yaml: train.backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("params.yaml: train.device is cuda but torch finds no CUDA device")
    global _device
    dev = torch.device("cpu")
    if device == "cuda":
        dev = torch.device("cuda", local_rank())
        torch.cuda.set_device(dev)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS (torch_settings)
    if launched() and not active():
        chosen = ("nccl" if dev.type == "cuda" else "gloo") if backend == "auto" else backend
        dist.init_process_group(backend=chosen)
        logger.info("rank %d of %d joined the %s process group on %s", rank(), world_size(), chosen, dev)
    _device = dev
    return dev


def current_device() -> torch.device:
    """The device `setup` chose (the CPU before or without it)."""
    return _device


def destroy() -> None:
    """Leaves and destroys the process group, if one is initialised; `current_device()` is the CPU again."""
    global _device
    _device = torch.device("cpu")
    if active():
        dist.destroy_process_group()


def barrier() -> None:
    """Waits for every rank (no-op in a single process)."""
    if world_size() > 1:
        dist.barrier()


def local_batch_size(batch_size: int, world: int) -> int:
    """Rows per rank and step when `batch_size` is the global batch: batch_size / world.

    Raises:
        ValueError: `batch_size` is not a multiple of `world`, or leaves a rank fewer than 2 rows
            (BatchNorm cannot train on one).
    """
    if batch_size % world or batch_size // world < 2:
        raise ValueError(f"train: batch_size {batch_size} is the global batch; with {world} processes it must be "
                         f"a multiple of {world} of at least {2 * world}")
    return batch_size // world


def shard(order: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank `rank`'s share of an epoch's index order, as torch's DistributedSampler (drop_last=False).

    The order is padded by repeating it from the start to a multiple of `world` and the rank takes
    every `world`-th index from position `rank`, so every rank has ceil(N / world) indices. Split
    into batches of B / world, rank r's k-th batch holds positions r, r + world, ... of the k-th
    batch of B of the whole order. With world 1 the order is returned unchanged.

    Args:
        order: (N,) indices, the same on every rank (the same seeded permutation).
        rank: this process's rank.
        world: number of processes.

    Returns:
        (ceil(N / world),) indices.
    """
    if world == 1:
        return order
    total = -(-len(order) // world) * world
    padded = order.repeat(-(-total // len(order)))[:total]
    return padded[rank::world]


def to_device(device: torch.device, *tensors: torch.Tensor | None) -> tuple:
    """The tensors on `device` (None stays None; tensors already there are returned as they are)."""
    return tuple(None if t is None else t.to(device) for t in tensors)


class _Step(nn.Module):
    """The model and its objective as one module, so that DistributedDataParallel sees the loss's graph.

    DDP looks for unused parameters from the forward's outputs; a network's outputs can include
    heads the loss leaves out in a batch (the gated model's auxiliary head without a spectrum), so
    the output here is (loss, logits).
    """

    def __init__(self, model: nn.Module, objective: Callable) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, x, y, spec, has_spec):
        return self.objective(self.model, x, y, spec, has_spec)


def wrap_step(model: nn.Module, objective: Callable, device: torch.device, find_unused: bool = True) -> Callable:
    """step(x, y, spec, has_spec) -> (loss, logits): `objective` on `model`, through DDP in a process group.

    Args:
        model: the network being trained (already on `device`); DDP broadcasts rank 0's weights.
        objective: from `objectives.make_objective`.
        device: the model's device.
        find_unused: the model may leave parameters out of a step's loss (a spectral branch without
            spectra, the gated auxiliary head): DDP then looks for them after each forward.

    Returns:
        The step; its gradients are averaged over the ranks during `loss.backward()`.
    """
    if world_size() == 1:
        return functools.partial(objective, model)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(_Step(model, objective), device_ids=ids, find_unused_parameters=find_unused)


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sums of `values` over the ranks (float64); the same list in a single process."""
    if world_size() == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


@torch.no_grad()
def sync_buffers(model: nn.Module) -> None:
    """Copies rank 0's buffers (BatchNorm running statistics) to every rank (no-op in a single process)."""
    if world_size() == 1:
        return
    for buf in model.buffers():
        dist.broadcast(buf, src=0)
