"""The one device rule for model passes outside the Trainer (model-derived targets, evaluation,
compare, explain, export checks): run on this process's accelerator, in the run's dtype.

The device comes from accelerate's `PartialState` (under `accelerate launch` each rank gets its own
GPU: `cuda:LOCAL_RANK`). A pass that would run on the CPU while an accelerator is visible (a launch
with `--cpu`, `ACCELERATE_USE_CPU`, a stray setting) is refused unless the caller asked for the CPU:
a million-text corpus pass on the CPU of a GPU node would silently take days.
"""

from __future__ import annotations

import logging
import os

import torch

logger = logging.getLogger(__name__)

# Lets any command ask for the CPU without an option of its own (e.g. a quick check on a GPU node).
ALLOW_CPU_ENV = "TEXT2TOKEN_ALLOW_CPU"

# What a pass's dtype is when the caller gives none: bf16 where the accelerator runs it natively
# (the paper's runs), float32 on the CPU (bf16 matmuls there are slow and less exact).
AUTO_DTYPE = "auto"


def visible_accelerator() -> str | None:
    """The kind of accelerator this process can see ("cuda", "xpu", "mps"), or None."""
    if torch.cuda.is_available():
        return "cuda"
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return "xpu"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return None


def _cpu_asked_by_environment() -> bool:
    return os.environ.get(ALLOW_CPU_ENV, "").lower() in ("1", "true", "yes")


def process_device(*, allow_cpu: bool = False, purpose: str = "this model pass") -> torch.device:
    """This process's device: accelerate's `PartialState().device` (the CPU when `allow_cpu`).

    Raises a ValueError when it is the CPU while an accelerator is visible and the CPU was not asked for."""
    if allow_cpu:
        return torch.device("cpu")
    from accelerate import PartialState

    device = torch.device(PartialState().device)
    accelerator = visible_accelerator()
    if device.type == "cpu" and accelerator is not None and not _cpu_asked_by_environment():
        raise ValueError(f"{purpose} would run on the CPU while {accelerator} is visible (accelerate's process state "
                         f"says cpu: a launch with --cpu or ACCELERATE_USE_CPU?). Ask for the CPU explicitly "
                         f"(--use_cpu / --cpu, or {ALLOW_CPU_ENV}=1) or launch on the accelerator")
    return device


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype | None:
    """`auto`: bfloat16 on an accelerator that supports it, float32 on the CPU; None keeps the
    weights' dtype; a name or a torch dtype is taken as given."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == AUTO_DTYPE:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type in ("xpu", "mps") else torch.float32
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"dtype={dtype!r}: expected auto, float32, bfloat16 or float16")
    return resolved


def place_model(model, *, purpose: str, allow_cpu: bool = False, dtype: torch.dtype | str | None = None):
    """Move `model` to this process's device (see `process_device`), cast it to `dtype` (see
    `resolve_dtype`; None keeps its dtype), log where it runs, and return it."""
    device = process_device(allow_cpu=allow_cpu, purpose=purpose)
    target_dtype = resolve_dtype(dtype, device)
    if target_dtype is not None and target_dtype != model.dtype:
        model.to(dtype=target_dtype)
    if model.device != device:
        model.to(device)
    from .distributed import rank, world_size

    logger.info("%s runs on %s in %s (process %d of %d)", purpose, device, model.dtype, rank(), world_size())
    return model
