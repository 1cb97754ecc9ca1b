"""Score a run's saved checkpoints on one development task and publish the best, as the authors chose
their released checkpoints (best of 10-100 on SciFact):

    text2token select outputs/mistral-mean/stage2 --task OfflineLeeSTS --output outputs/mistral-mean/best

The output folder gets the chosen model (LoRA merged) and checkpoint_selection.json (every score, the
choice and why). Under `accelerate launch` every process encodes its share.
"""

from __future__ import annotations

import argparse
import json
import logging

from ..command_line import OneLineParser
from ..devices import AUTO_DTYPE
from ..distributed import is_main_process, join_process_group
from ..evaluation.selection import select_checkpoint


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="text2token select", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a training run's output folder, holding checkpoint-N folders")
    parser.add_argument("--task", required=True,
                        help="the development task: an offline task (e.g. OfflineLeeSTS) or an mteb task (SciFact, "
                             "the paper's; needs the Hub)")
    parser.add_argument("--output", required=True, help="a new or empty folder for the chosen model")
    parser.add_argument("--max_length", type=int, default=None,
                        help="tokens per text (default: each checkpoint's inference length, config.encode_length)")
    parser.add_argument("--quick", type=int, default=None, metavar="N", help="cap the task's tables at N rows")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--cache_dir", default=None, help="embedding cache (default <run_dir>/checkpoint-selection)")
    parser.add_argument("--dtype", default=AUTO_DTYPE, help="auto | float32 | bfloat16 | float16")
    parser.add_argument("--cpu", action="store_true", help="encode on the CPU even when an accelerator is visible")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    join_process_group()
    options = dict(vars(args))
    record = select_checkpoint(options.pop("run_dir"), options.pop("task"), options.pop("output"), **options)
    if is_main_process():
        print(json.dumps(record, indent=1))
        print(f"published {record['selected']} to {args.output}")
    return record
