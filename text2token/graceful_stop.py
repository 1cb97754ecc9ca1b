"""SIGTERM and Ctrl-C save before they stop a training run.

A cluster scheduler sends SIGTERM some time before it kills a job; without a handler Python dies at
once and every step since the last checkpoint is lost (and the output folder's lock stays behind).
`StopOnSignal` turns SIGTERM and SIGINT into "finish this step, save a checkpoint, stop": the run then
ends non-zero with how to resume. A second Ctrl-C interrupts at once, as usual.
"""

from __future__ import annotations

import logging
import signal
import threading

import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopOnSignal(TrainerCallback):
    """Records SIGTERM/SIGINT while training runs; at the end of the current step asks Trainer to save a
    checkpoint and stop. Under a multi-process launch, the ranks agree on the stop at each step (one
    rank alone saving would wait in a collective for the others)."""

    def __init__(self, signals=STOP_SIGNALS):
        self.signals = tuple(signals)
        self.received: int | None = None
        self.stopped_at_step: int | None = None  # set when a signal stopped training before its end
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.received = signum
        logger.warning("%s received: finishing the current step, then saving a checkpoint and stopping",
                       signal.Signals(signum).name)

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)

    def on_step_end(self, args, state, control, **kwargs):
        stop = self.received is not None
        if args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([float(self.received or 0)], device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if flag.item() and self.received is None:
                self.received = int(flag.item())
            stop = bool(flag.item())
        if stop and not control.should_training_stop:  # the last step ends the run normally anyway
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at_step = state.global_step
        return control

    def on_train_end(self, args, state, control, **kwargs):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def stopped_message(self, output_dir: str, step: int) -> str:
        name = signal.Signals(self.received).name if self.received else "a signal"
        return (f"stopped by {name} after step {step}: the state is saved in {output_dir}/checkpoint-{step}. Run the "
                f"same command again to resume from it")

    @property
    def exit_code(self) -> int:
        return 128 + int(self.received or 0)
