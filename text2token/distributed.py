"""The process group of a multi-process run (`accelerate launch`, `torchrun`), and the few collective
operations text2token needs beyond Trainer's.

- `join_process_group` joins the launcher's group once, early, with a stated timeout. On a machine
  without a GPU it uses gloo on the CPU: `accelerate launch` starts local processes itself only for
  its MULTI_GPU type (see recipes/accelerate_configs/cpu_ddp2.yaml), and Trainer's CPU path would
  otherwise ignore `ddp_timeout`. Once the group exists, Trainer and accelerate reuse it.
- `wait_for_path` lets a rank wait for a file another rank writes (the assembled target dataset)
  without a collective: a long build on the main process never trips the process-group timeout.
- `any_rank` is the per-step agreement that lets every rank stop together when one of them sees a
  non-finite loss.
- `from_main_process` and `gather_objects` let evaluation split its encoding across ranks (small
  pickled objects: text keys and float32 embedding blocks).
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

# Seconds a collective may wait before the group fails; overrides `ddp_timeout` (tests set it short).
TIMEOUT_ENV = "TEXT2TOKEN_DDP_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800


def launched_world_size() -> int:
    """The number of processes the launcher started (1 when not launched)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_group_timeout(default_s: float | None = None) -> float:
    value = os.environ.get(TIMEOUT_ENV)
    if value:
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{TIMEOUT_ENV}={value!r}: expected a number of seconds") from None
    return float(default_s if default_s is not None else DEFAULT_TIMEOUT_S)


def join_process_group(timeout_s: float | None = None) -> None:
    """Join the launcher's process group (no-op for a single process or when already joined)."""
    if launched_world_size() <= 1 or (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    from accelerate import PartialState

    cpu = not torch.cuda.is_available()
    if cpu:
        # Trainer's device setup reads this, so it takes the CPU branch on this group too.
        os.environ["ACCELERATE_USE_CPU"] = "true"
        if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
            # accelerate turns ACCELERATE_USE_FSDP into FSDP only on a GPU-type group (see recipes/README.md)
            logger.warning("FSDP is not applied on the CPU: accelerate makes a CPU launch plain data parallel "
                           "(DistributedType.MULTI_CPU), so every process holds the whole model")
    timeout = timedelta(seconds=process_group_timeout(timeout_s))
    state = PartialState(cpu=cpu, timeout=timeout)
    logger.info("Process %d of %d joined the %s group (timeout %s)", state.process_index, state.num_processes,
                state.backend, timeout)


def is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1


def rank() -> int:
    return torch.distributed.get_rank() if is_distributed() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def _device() -> torch.device:
    # nccl reduces tensors on the GPU; gloo on the CPU.
    if is_distributed() and torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of `tensor` over all ranks (the tensor itself with one process)."""
    if not is_distributed():
        return tensor
    reduced = tensor.detach().to(_device()).clone()
    torch.distributed.all_reduce(reduced, op=torch.distributed.ReduceOp.SUM)
    return reduced.to(tensor.device)


def any_rank(flag: bool, device: torch.device | None = None) -> bool:
    """True on every rank when `flag` is true on at least one (every rank must call this)."""
    if not is_distributed():
        return bool(flag)
    value = torch.tensor([1.0 if flag else 0.0], device=device or _device())
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.SUM)
    return bool(value.item() > 0)


def ranks_where(flag: bool, device: torch.device | None = None) -> list[int]:
    """The ranks on which `flag` is true, known to every rank (every rank must call this)."""
    if not is_distributed():
        return [0] if flag else []
    value = torch.zeros(world_size(), device=device or _device())
    value[rank()] = 1.0 if flag else 0.0
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.SUM)
    return [index for index, hit in enumerate(value.tolist()) if hit > 0]


def barrier() -> None:
    if is_distributed():
        torch.distributed.barrier()


def wait_for_path(path: str | os.PathLike, *, timeout_s: float = 24 * 3600, poll_s: float = 0.5,
                  what: str = "the main process's output") -> Path:
    """Wait until `path` exists (another rank publishes it with an atomic rename); no collective."""
    path, deadline = Path(path), time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f} s for {what} at {path}; did the main process fail? "
                               f"See its log")
        time.sleep(poll_s)
    return path


def split_evenly(count: int, parts: int, index: int) -> range:
    """The `index`-th of `parts` contiguous ranges covering range(count), sizes differing by at most 1."""
    base, extra = divmod(count, parts)
    start = index * base + min(index, extra)
    return range(start, start + base + (1 if index < extra else 0))


def from_main_process(obj):
    """The main process's `obj` on every rank (every rank must call this; `obj` must pickle)."""
    if not is_distributed():
        return obj
    box = [obj if is_main_process() else None]
    torch.distributed.broadcast_object_list(box, src=0, device=_device())
    return box[0]


def gather_objects(obj) -> list:
    """Every rank's `obj`, in rank order, on every rank (every rank must call this)."""
    if not is_distributed():
        return [obj]
    gathered = [None] * world_size()
    torch.distributed.all_gather_object(gathered, obj)
    return gathered
