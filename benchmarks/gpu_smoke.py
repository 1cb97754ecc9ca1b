"""The steps of `benchmarks/gpu_smoke.sh`: `train`, `encode`, `ddp`. Each prints lines `SMOKE {json}`
that the shell script gathers into its summary.

    python benchmarks/gpu_smoke.py train encode --out DIR [--cpu] [--batch 32] [--max_length 128] [--steps 20]
                                                [--texts 4096] [--encode_lengths 512 1024]
    torchrun --nproc_per_node N benchmarks/gpu_smoke.py ddp --out DIR [--cpu]

What it measures, as the paper's runs use it: last-token pooling with PromptEOL, gradient checkpointing
on, bf16 weights with fp32 LoRA under bf16 autocast, texts that really fill `--max_length` tokens
(several WordNet glosses joined; one gloss is ~10 tokens), and encoding of texts that fill 512 and
1024 tokens. Each phase is timed on its own: the embedded backbone's conversion, each stage's target
pass, training and final save, and `encode` at each length. The stage-2 target pass and the
evaluation must run on the accelerator (`cuda`) unless --cpu; the devices they ran on are reported
(from text2token.devices' log) and checked. On a GPU every step reports torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from common import glosses  # benchmarks/common.py: the packaged glosses, read once

from text2token.backbones import EMBEDDED_DEFAULT

ROOT = Path(__file__).resolve().parents[1]
STAGE1, STAGE2 = ROOT / "recipes/smollm2-135m/stage1.yaml", ROOT / "recipes/smollm2-135m/stage2.yaml"


def report(step: str, **values) -> None:
    print("SMOKE " + json.dumps({"step": step, **values}), flush=True)


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_mib() -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None


def expected_device(args) -> str:
    return "cpu" if args.cpu else "cuda"


def long_texts(n: int, min_tokens: int, tokenizer) -> list[str]:
    """`n` texts of at least `min_tokens` tokens each: consecutive glosses joined into one paragraph."""
    pool, texts, at = glosses(), [], 0
    while len(texts) < n:
        parts = []
        while len(tokenizer(" ".join(parts))["input_ids"]) < min_tokens:
            parts.append(pool[at % len(pool)])
            at += 1
        texts.append(" ".join(parts))
    return texts


class DeviceLog(logging.Handler):
    """Keeps text2token.devices' "<pass> runs on <device> in <dtype>" lines."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def device_of(self, purpose: str) -> str | None:
        found = [line.split(" runs on ")[1].split()[0] for line in self.lines if line.startswith(purpose)]
        return found[-1] if found else None


@contextmanager
def timed_phases(timings: dict):
    """Time the target pass, the training loop and the final save inside `text2token train`."""
    from text2token.commands import train as recipe
    from text2token.trainer import Text2TokenTrainer

    originals = recipe.obtain, Text2TokenTrainer.train, Text2TokenTrainer.save_model

    def timer(key, fn):
        def wrapped(*a, **k):
            if key == "save_s" and (k.get("_internal_call") or (len(a) > 2 and a[2])):
                return fn(*a, **k)  # a checkpoint, not the final save
            started = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timings[key] = round(timings.get(key, 0.0) + time.perf_counter() - started, 2)
        return wrapped

    recipe.obtain = timer("targets_s", originals[0])
    Text2TokenTrainer.train = timer("train_s", originals[1])
    Text2TokenTrainer.save_model = timer("save_s", originals[2])
    try:
        yield
    finally:
        recipe.obtain, Text2TokenTrainer.train, Text2TokenTrainer.save_model = originals


def train(args) -> None:
    """Stage 1 then stage 2 of the backbone (the embedded default) through `text2token train`, bf16, last
    pooling with gradient checkpointing, on texts that fill `max_length` tokens; each phase timed."""
    from transformers import AutoTokenizer

    from text2token.backbones import resolve_backbone
    from text2token.commands import train as recipe

    started = time.perf_counter()
    backbone = resolve_backbone(args.backbone)  # the embedded GGUF is converted on first use, else the cache
    report("convert", wall_s=round(time.perf_counter() - started, 2), backbone=str(backbone))
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    texts = long_texts(args.batch * args.steps, args.max_length, tokenizer)
    corpus = args.out / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n")
    filled = [min(len(ids), args.max_length) for ids in tokenizer(texts)["input_ids"]]
    common = ["--per_device_train_batch_size", str(args.batch), "--max_length", str(args.max_length),
              "--max_steps", str(args.steps), "--bf16", "true", "--dtype", "bfloat16", "--alignment_every", "0",
              "--pooling", "last", "--gradient_checkpointing", "true",
              "--save_steps", "100000", "--logging_steps", "1", "--dataloader_num_workers", "0",
              "--corpus", str(corpus), "--max_train_samples", str(len(texts))]
    if args.cpu:
        common += ["--use_cpu", "true"]
    stages = {"stage1": ["--config", str(STAGE1), "--output_dir", str(args.out / "stage1"), "--backbone", backbone],
              "stage2": ["--config", str(STAGE2), "--output_dir", str(args.out / "stage2"),
                         "--backbone", str(args.out / "stage1")]}
    devices = DeviceLog()
    logging.getLogger("text2token.devices").addHandler(devices)
    logging.getLogger("text2token.devices").setLevel(logging.INFO)
    for name, flags in stages.items():
        reset_peak()
        timings = {}
        started = time.perf_counter()
        with timed_phases(timings):
            recipe.main(flags + common)
        wall = time.perf_counter() - started
        done = json.loads((args.out / name / recipe.COMPLETE_MARKER).read_text())
        target_device = devices.device_of("the model-derived target pass") if name == "stage2" else None
        report(name, wall_s=round(wall, 1), **timings, steps=done["global_step"], first_loss=done["first_loss"],
               last_loss=done["last_loss"], batch=args.batch, max_length=args.max_length,
               mean_input_tokens=round(sum(filled) / len(filled), 1), pooling="last", gradient_checkpointing=True,
               target_pass_device=target_device, peak_gpu_mib=peak_mib())
        if name == "stage2" and (target_device or "").split(":")[0] != expected_device(args):
            raise SystemExit(f"the stage-2 target pass ran on {target_device}, not {expected_device(args)}")


def encode(args) -> None:
    """Throughput of `encode` on the stage-2 model, placed by the evaluation loader (the device rule,
    bf16 on an accelerator), on texts that fill each of `--encode_lengths`."""
    from text2token.evaluation.systems import load_system

    embedder = load_system(str(args.out / "stage2"), allow_cpu=args.cpu, dtype="bfloat16")
    model = embedder.model
    device = str(model.device)
    if device.split(":")[0] != expected_device(args):
        raise SystemExit(f"the evaluation model is on {device}, not {expected_device(args)}")
    for length in args.encode_lengths:
        texts = long_texts(args.texts, length, model.tokenizer)
        model.encode(texts[:args.encode_batch], batch_size=args.encode_batch, max_length=length)  # warm-up
        reset_peak()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        out = model.encode(texts, batch_size=args.encode_batch, max_length=length)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
        tokens = sum(len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=length)["input_ids"])
        report(f"encode-{length}", texts=len(texts), max_length=length, mean_tokens=round(tokens / len(texts), 1),
               wall_s=round(wall, 2), texts_per_s=round(len(texts) / wall, 1), tokens_per_s=round(tokens / wall),
               dim=int(out.shape[1]), device=device, dtype=str(model.dtype).removeprefix("torch."),
               peak_gpu_mib=peak_mib())


def ddp(args) -> None:
    """One optimizer step under torchrun on every rank it started (the shell script starts one per visible
    GPU): the Trainer must wrap the model in DistributedDataParallel. Last pooling, gradient checkpointing,
    texts that fill `max_length`."""
    import datasets
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from text2token.arguments import ModelArguments, Text2TokenTrainingArguments
    from text2token.factory import build_model, lora_settings
    from text2token.targets import build_data_driven_targets
    from text2token.trainer import Text2TokenTrainer

    model_args = ModelArguments(backbone=args.backbone, max_length=args.max_length, dtype="bfloat16", pooling="last")
    model = build_model(model_args)
    corpus = datasets.Dataset.from_dict({"text": long_texts(args.batch * 2, args.max_length, model.tokenizer)})
    targets = build_data_driven_targets(corpus, model.tokenizer, corpus="wordnet-glosses",
                                        backbone=model_args.backbone)
    model.add_lora(lora_settings(model_args))
    training = Text2TokenTrainingArguments(
        output_dir=str(args.out / "ddp"), max_steps=1, per_device_train_batch_size=args.batch, learning_rate=5e-5,
        bf16=True, use_cpu=args.cpu, gradient_checkpointing=True, logging_steps=1, save_strategy="no", report_to="none",
        dataloader_num_workers=0, merge_lora_on_save=False)
    reset_peak()
    trainer = Text2TokenTrainer(model=model, args=training, train_dataset=targets)
    result = trainer.train()
    wrapped = isinstance(trainer.model_wrapped, DistributedDataParallel)
    if training.process_index == 0:
        report("ddp", ddp_wrapped=wrapped, world_size=dist.get_world_size() if dist.is_initialized() else 1,
               backend=dist.get_backend() if dist.is_initialized() else None, steps=trainer.state.global_step,
               loss=round(result.training_loss, 4), peak_gpu_mib=peak_mib())
    if not wrapped:
        raise SystemExit("the Trainer did not wrap the model in DistributedDataParallel: no DDP step ran")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("steps_to_run", nargs="+", choices=["train", "encode", "ddp"], metavar="step",
                        help="train | encode | ddp; several run in order in one process (imports paid once)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (the dry run)")
    parser.add_argument("--backbone", default=EMBEDDED_DEFAULT,
                        help="the causal LM both stages start from (default: the embedded default)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--texts", type=int, default=4096, help="texts encoded at each length")
    parser.add_argument("--encode_lengths", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--encode_batch", type=int, default=32)
    args = parser.parse_args()
    if not args.cpu and not torch.cuda.is_available():
        raise SystemExit("no CUDA device is visible to torch: run on a GPU machine, or pass --cpu for the dry run")
    for step in args.steps_to_run:
        {"train": train, "encode": encode, "ddp": ddp}[step](args)


if __name__ == "__main__":
    main()
