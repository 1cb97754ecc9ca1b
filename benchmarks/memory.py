"""Memory: peak RSS of a stage-1 training run, and the on-disk size of the target datasets.

- Peak RSS: a few `Text2TokenTrainer` steps on data-driven targets at batch 32 x 128 tokens (the
  paper's stage-1 shape) in a fresh subprocess, read with `resource.getrusage(...).ru_maxrss`;
  the resident size right after loading the model is printed beside it. The full run adds one
  step with `gradient_checkpointing=True`, to show how much of the peak is saved activations.
- Disk: data-driven and model-derived (top-32) targets of the same WordNet glosses, saved with
  `save_targets`, in bytes per row beside the raw UTF-8 text they come from.
"""

from __future__ import annotations

import common  # first: it quiets tqdm before datasets imports it
from common import Row

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import datasets

BATCH, LENGTH = 32, 128
# (training steps, rows for the disk sizes: data-driven, model-derived)
SETTINGS = {
    ("tiny", False): (3, 25_000, 25_000), ("tiny", True): (2, 5000, 5000),
    ("embedded", False): (2, 25_000, 1024), ("embedded", True): (1, 5000, 256),
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _current_rss_mb() -> float:
    # ru_maxrss is a high-water mark (loading alone may touch two copies of the weights); the
    # resident size now is what the model holds before training starts.
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(name: str, steps: int, gradient_checkpointing: bool) -> None:
    """Runs in the subprocess: load, build targets, train `steps` steps, print one JSON line."""
    common.quiet()
    from text2token.arguments import Text2TokenTrainingArguments
    from text2token.targets import build_data_driven_targets
    from text2token.trainer import Text2TokenTrainer

    model = common.build_model(name, max_length=LENGTH)
    # safetensors maps the weights lazily: read them all once, so the resident size counts them.
    sum(float(p.sum()) for p in model.parameters())
    loaded = _current_rss_mb()
    texts = datasets.Dataset.from_dict({"text": common.fixed_length_texts(BATCH * steps, LENGTH)})
    targets = build_data_driven_targets(texts, model.tokenizer)
    before = _peak_rss_mb()
    with tempfile.TemporaryDirectory(prefix="t2t-bench-mem-") as out:
        args = Text2TokenTrainingArguments(
            output_dir=out, per_device_train_batch_size=BATCH, max_steps=steps, learning_rate=5e-5, use_cpu=True,
            report_to="none", save_strategy="no", logging_strategy="no", disable_tqdm=True,
            gradient_checkpointing=gradient_checkpointing, dataloader_num_workers=0)
        start = time.perf_counter()
        Text2TokenTrainer(model=model, args=args, train_dataset=targets).train()
        seconds = time.perf_counter() - start
    print(json.dumps({"loaded_mb": loaded, "peak_before_training_mb": before, "peak_mb": _peak_rss_mb(),
                      "seconds": seconds}))


def peak_rss(name: str, steps: int, gradient_checkpointing: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--steps", str(steps)]
    if gradient_checkpointing:
        cmd.append("--gradient-checkpointing")
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"the training subprocess failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_value(stats: dict) -> str:
    value = f"{stats['peak_mb']:.0f} (after loading: {stats['loaded_mb']:.0f})"
    if stats["peak_mb"] <= stats["peak_before_training_mb"] * 1.01:
        value += " - the peak came before training (loading), not from the steps"
    return value


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def disk_rows(name: str, n_data: int, n_model: int) -> list[Row]:
    from text2token.targets import build_data_driven_targets, save_targets
    from text2token.targets.model_derived import build_model_derived_targets

    model = common.build_model(name, lora=False).eval()
    rows = []
    with tempfile.TemporaryDirectory(prefix="t2t-bench-disk-") as tmp:
        for kind, n in (("data-driven", n_data), ("model-derived", n_model)):
            texts = common.corpus(n)
            dataset = datasets.Dataset.from_dict({"text": texts})
            if kind == "data-driven":
                targets = build_data_driven_targets(dataset, model.tokenizer)
            else:
                targets = build_model_derived_targets(model, dataset, work_dir=f"{tmp}/work", top_k=32)
            path = save_targets(targets, f"{tmp}/{kind}")
            text_bytes = sum(len(t.encode("utf-8")) for t in targets.data.column("text").to_pylist()) / len(targets)
            per_row = dir_bytes(path) / len(targets)
            sizes = [len(ids) for ids in targets.data.column("target_ids").to_pylist()]
            rows.append(Row(name, f"{kind} targets on disk: bytes/row ({len(targets)} rows)",
                            f"{per_row:.0f} (raw text {text_bytes:.0f}, rest {per_row - text_bytes:.0f} for "
                            f"{sum(sizes) / len(sizes):.1f} targets/row)"))
    return rows


def run(name: str, quick: bool) -> list[Row]:
    steps, n_data, n_model = SETTINGS[(name, quick)]
    print(f"[memory] {name}: {steps} training step(s) at {BATCH}x{LENGTH} in a subprocess", flush=True)
    stats = peak_rss(name, steps)
    print(f"  loaded {stats['loaded_mb']:.0f} MB, peak {stats['peak_mb']:.0f} MB, {stats['seconds']:.0f}s", flush=True)
    rows = [Row(name, f"stage-1 training {BATCH}x{LENGTH}, {steps} step(s): peak RSS MB", _peak_value(stats))]
    if not quick:
        # The peak comes with the first backward, so one step shows what checkpointing saves.
        stats = peak_rss(name, 1, gradient_checkpointing=True)
        print(f"  gradient checkpointing: peak {stats['peak_mb']:.0f} MB, {stats['seconds']:.0f}s", flush=True)
        rows.append(Row(name, "same, 1 step, gradient_checkpointing=True: peak RSS MB", _peak_value(stats)))
    print(f"[memory] {name}: target datasets on disk", flush=True)
    return rows + disk_rows(name, n_data, n_model)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--child", default=None)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    known, rest = parser.parse_known_args()
    if known.child:
        child(known.child, known.steps, known.gradient_checkpointing)
    else:
        common.main(run, __doc__.splitlines()[0])
