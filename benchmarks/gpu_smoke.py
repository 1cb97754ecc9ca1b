"""The steps of `benchmarks/gpu_smoke.sh`: `train`, `encode`, `ddp`. Each prints one line
`SMOKE {json}` that the shell script gathers into its summary.

    python benchmarks/gpu_smoke.py train encode --out DIR [--cpu] [--batch 32] [--max_length 128] [--steps 20]
                                                [--texts 4096]
    torchrun --nproc_per_node 1 benchmarks/gpu_smoke.py ddp --out DIR [--cpu]

On a GPU every step runs in bf16 mixed precision (bf16 weights, fp32 LoRA) and reports
torch.cuda.max_memory_allocated; with --cpu the same code runs on the CPU (bf16 autocast included).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
STAGE1, STAGE2 = ROOT / "recipes/smollm2-135m/stage1.yaml", ROOT / "recipes/smollm2-135m/stage2.yaml"


def report(step: str, **values) -> None:
    print("SMOKE " + json.dumps({"step": step, **values}), flush=True)


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_mib() -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None


def glosses(n: int) -> list[str]:
    from text2token.corpora import load_corpus

    texts = load_corpus("wordnet-glosses")["text"]
    return [texts[i % len(texts)] for i in range(n)]


def train(args) -> None:
    """Stage 1 then stage 2 of the embedded default through `text2token train`, bf16, one stage at a time."""
    from text2token.commands import train as recipe

    common = ["--per_device_train_batch_size", str(args.batch), "--max_length", str(args.max_length),
              "--max_steps", str(args.steps), "--bf16", "true", "--dtype", "bfloat16", "--alignment_every", "0",
              "--save_steps", "100000", "--logging_steps", "1", "--dataloader_num_workers", "0",
              "--max_train_samples", str(args.batch * args.steps)]  # targets only for the texts trained on
    if args.cpu:
        common += ["--use_cpu", "true"]
    stages = {"stage1": ["--config", str(STAGE1), "--output_dir", str(args.out / "stage1")],
              "stage2": ["--config", str(STAGE2), "--output_dir", str(args.out / "stage2"),
                         "--backbone", str(args.out / "stage1")]}
    for name, flags in stages.items():
        reset_peak()
        started = time.perf_counter()
        recipe.main(flags + common)
        wall = time.perf_counter() - started
        done = json.loads((args.out / name / recipe.COMPLETE_MARKER).read_text())
        report(name, wall_s=round(wall, 1), steps=done["global_step"], first_loss=done["first_loss"],
               last_loss=done["last_loss"], batch=args.batch, max_length=args.max_length,
               peak_gpu_mib=peak_mib())


def encode(args) -> None:
    """Throughput of `encode` on the stage-2 model, loaded in bf16, at the training length."""
    from text2token import Text2TokenModel

    device = "cpu" if args.cpu or not torch.cuda.is_available() else "cuda"
    model = Text2TokenModel.from_pretrained(args.out / "stage2", dtype=torch.bfloat16).to(device).eval()
    texts = glosses(args.texts)
    model.encode(texts[:64], batch_size=32, max_length=args.max_length)  # warm-up: kernels, allocator
    reset_peak()
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    out = model.encode(texts, batch_size=32, max_length=args.max_length)
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    tokens = sum(len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"])
    report("encode", texts=len(texts), wall_s=round(wall, 2), texts_per_s=round(len(texts) / wall, 1),
           tokens_per_s=round(tokens / wall), dim=int(out.shape[1]), peak_gpu_mib=peak_mib())


def ddp(args) -> None:
    """One optimizer step under torchrun: the Trainer must wrap the model in DistributedDataParallel."""
    import datasets
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from text2token.arguments import ModelArguments, Text2TokenTrainingArguments
    from text2token.factory import build_model, lora_settings
    from text2token.targets import build_data_driven_targets
    from text2token.trainer import Text2TokenTrainer

    model_args = ModelArguments(max_length=args.max_length, dtype="bfloat16")
    model = build_model(model_args)
    corpus = datasets.Dataset.from_dict({"text": glosses(args.batch * 2)})
    targets = build_data_driven_targets(corpus, model.tokenizer, corpus="wordnet-glosses",
                                        backbone=model_args.backbone)
    model.add_lora(lora_settings(model_args))
    training = Text2TokenTrainingArguments(
        output_dir=str(args.out / "ddp"), max_steps=1, per_device_train_batch_size=args.batch, learning_rate=5e-5,
        bf16=True, use_cpu=args.cpu, logging_steps=1, save_strategy="no", report_to="none",
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
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--texts", type=int, default=4096)
    args = parser.parse_args()
    if not args.cpu and not torch.cuda.is_available():
        raise SystemExit("no CUDA device is visible to torch: run on a GPU machine, or pass --cpu for the dry run")
    for step in args.steps_to_run:
        {"train": train, "encode": encode, "ddp": ddp}[step](args)


if __name__ == "__main__":
    main()
