"""One process or many: `torchrun` (single node, multi-node) or a plain `python`/`odg` process.

When the `torchrun` variables (RANK, WORLD_SIZE, LOCAL_RANK) are set, `setup` initialises the
default process group: NCCL on CUDA (each process on GPU LOCAL_RANK), gloo on CPU. Otherwise it is
a single process, no process group.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialised: bool = False          # this module started the process group (and ends it)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if dist.is_available() and dist.is_initialized():
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index or 0])
            else:
                dist.barrier()

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of `values` over all processes (float64); the values themselves alone."""
        if not self.distributed:
            return [float(v) for v in values]
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Give every process rank 0's buffers (BN running statistics), e.g. before evaluating or
        saving: DDP broadcasts them at the start of each forward, so after the last training step
        each rank holds statistics of its own last batch."""
        if not self.distributed:
            return
        for b in model.buffers():
            dist.broadcast(b.data, 0)

    def cleanup(self) -> None:
        if self.initialised and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
            self.initialised = False


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def pick_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """"auto": GPU `local_rank` when CUDA is available, else the CPU; or "cpu", "cuda"."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda but CUDA is not available")
        return torch.device("cuda", local_rank)
    if device != "cpu":
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    return torch.device("cpu")


def setup(device: str = "auto") -> DistEnv:
    """The process's rank, world size and device; initialises the process group under torchrun."""
    if not launched_by_torchrun():
        return DistEnv(device=pick_device(device, 0))
    local = int(os.environ["LOCAL_RANK"])
    dev = pick_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    started = False
    if not dist.is_initialized():
        kw = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", **kw)
        started = True
    return DistEnv(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local, device=dev,
                   initialised=started)


def wrap(model: nn.Module, env: DistEnv) -> nn.Module:
    """The model as trained: on its device; with more than one process, BatchNorm converted to
    SyncBatchNorm on CUDA (as published) and wrapped in DistributedDataParallel."""
    model = model.to(env.device)
    if not env.distributed:
        return model
    if env.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[env.device.index])
    return nn.parallel.DistributedDataParallel(model)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
