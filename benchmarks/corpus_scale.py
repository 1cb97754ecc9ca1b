"""Corpus scale: the data-driven build at 10k, 100k and 1M rows, and the model-derived build on one
and on two processes.

- Data-driven: synthetic mixed-length texts (`common.mixed_length_texts`: 2-100 words, log-uniform,
  cut from the gloss word stream) written to a parquet file and loaded from disk with `load_corpus`,
  as a large corpus would be; `build_data_driven_targets(num_proc=N)` in a fresh subprocess per size.
  Reported: microseconds per row of the build, and peak RSS (the build's process; its map workers
  beside it). Targets: per-row time at the largest size <= 1.3x that at the smallest; peak RSS grows
  less than 2x from the middle size to the largest.
- Model-derived: `text2token targets build --target_method model` with the tiny model (2 layers, real 49k
  vocabulary) over the same kind of texts, as one process and under `accelerate launch` with
  recipes/accelerate_configs/cpu_ddp2.yaml (two gloo processes, one thread each). Wall time of each
  command (process start-up included) and the speed-up; no target (it depends on the cores free).

    python benchmarks/corpus_scale.py                   # 10k, 100k, 1M rows; model-derived over 100k
    python benchmarks/corpus_scale.py --quick           # 2k, 10k, 40k rows; model-derived over 4k
    python benchmarks/corpus_scale.py --sizes 1000 5000 --model-rows 2000 --num-proc 2

The 1M-row case writes a ~150 MB parquet file and its Arrow cache under a temporary folder and takes
several minutes on two cores: run it alone on the machine (timings under CPU contention mean little).
"""

from __future__ import annotations

import common  # first: it quiets tqdm before datasets imports it
from common import Row

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FULL_SIZES, QUICK_SIZES = (10_000, 100_000, 1_000_000), (2_000, 10_000, 40_000)
FULL_MODEL_ROWS, QUICK_MODEL_ROWS = 100_000, 4_000
TIME_BOUND, RSS_BOUND = 1.3, 2.0


def write_corpus(path: Path, rows: int, chunk: int = 50_000) -> None:
    """`rows` synthetic texts into one parquet file, chunk by chunk (the parent never holds them all)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for start in range(0, rows, chunk):
            texts = common.mixed_length_texts(min(chunk, rows - start), seed=start)
            table = pa.table({"text": pa.array(texts, pa.string())})
            writer = writer or pq.ParquetWriter(str(path), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def child(corpus: str, num_proc: int | None) -> None:
    """Runs in the subprocess: load the corpus from disk, build, print one JSON line."""
    common.quiet()
    from text2token.corpora import load_corpus
    from text2token.targets import build_data_driven_targets

    tokenizer = common.tokenizer("tiny")
    dataset = load_corpus(corpus)
    before = _rss_mb()
    start = time.perf_counter()
    targets = build_data_driven_targets(dataset, tokenizer, max_length=128, num_proc=num_proc)
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": len(dataset), "kept": len(targets), "seconds": seconds, "peak_before_mb": before,
                      "peak_mb": _rss_mb(), "workers_peak_mb": _rss_mb(resource.RUSAGE_CHILDREN)}))


def data_driven(rows: int, num_proc: int | None, tmp: Path) -> dict:
    corpus = tmp / f"corpus-{rows}.parquet"
    write_corpus(corpus, rows)
    cache = tmp / f"hf-cache-{rows}"
    env = {**os.environ, "HF_DATASETS_CACHE": str(cache), "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, __file__, "--child", str(corpus)] + (["--num-proc", str(num_proc)] if num_proc else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    shutil.rmtree(cache, ignore_errors=True)
    corpus.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"the build subprocess failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def model_derived(rows: int, tmp: Path) -> dict[int, float]:
    """Wall seconds of the model-derived build command on one process and on two."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    model = common.build_model("tiny", lora=False)
    model.save_pretrained(tmp / "tiny-model")
    corpus = tmp / "model-corpus.parquet"
    pq.write_table(pa.table({"text": common.mixed_length_texts(rows, seed=1)}), str(corpus))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT),
           "HF_DATASETS_CACHE": str(tmp / "hf-cache-model")}
    seconds = {}
    for processes in (1, 2):
        args = ["-m", "text2token.cli", "targets", "build", "--target_method", "model", "--backbone", str(tmp / "tiny-model"),
                "--corpus", str(corpus), "--output", str(tmp / f"model-targets-{processes}")]
        launcher = [] if processes == 1 else ["-m", "accelerate.commands.launch", "--config_file",
                                              str(ROOT / "recipes/accelerate_configs/cpu_ddp2.yaml")]
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *launcher, *args], capture_output=True, text=True, env=env, cwd=ROOT)
        seconds[processes] = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"the {processes}-process build failed:\n{done.stderr[-3000:]}")
    return seconds


def run_scale(sizes: list[int], model_rows: int, num_proc: int | None) -> list[Row]:
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="t2t-bench-scale-") as tmp:
        for n in sizes:
            print(f"[corpus_scale] data-driven build over {n} rows (num_proc={num_proc})", flush=True)
            r = results[n] = data_driven(n, num_proc, Path(tmp))
            per_row = r["seconds"] / r["rows"] * 1e6
            print(f"  {r['seconds']:.1f}s, {per_row:.1f} us/row, peak RSS {r['peak_mb']:.0f} MB "
                  f"(before the build {r['peak_before_mb']:.0f}, map workers {r['workers_peak_mb']:.0f})", flush=True)
            rows.append(Row("tiny", f"data-driven build, {n} rows: us/row", f"{per_row:.1f}"))
            rows.append(Row("tiny", f"data-driven build, {n} rows: peak RSS MB",
                            f"{r['peak_mb']:.0f} (workers {r['workers_peak_mb']:.0f})"))
        small, middle, large = sizes[0], sizes[len(sizes) // 2], sizes[-1]
        per_row = {n: results[n]["seconds"] / results[n]["rows"] for n in sizes}
        rows.append(common.ratio_row("tiny", f"per-row time {large} / {small} rows", per_row[large], per_row[small],
                                     "<=", TIME_BOUND))
        peak = {n: max(results[n]["peak_mb"], results[n]["workers_peak_mb"]) for n in sizes}
        rows.append(common.ratio_row("tiny", f"peak RSS {large} / {middle} rows", peak[large], peak[middle],
                                     "<", RSS_BOUND))
        if model_rows:
            print(f"[corpus_scale] model-derived build over {model_rows} rows, 1 and 2 processes", flush=True)
            seconds = model_derived(model_rows, Path(tmp))
            for processes, s in seconds.items():
                rows.append(Row("tiny", f"model-derived build, {model_rows} rows, {processes} process(es): wall s",
                                f"{s:.1f} ({model_rows / s:.0f} rows/s, start-up included)"))
            rows.append(Row("tiny", "model-derived build: 1-process / 2-process wall time",
                            f"{seconds[1] / seconds[2]:.2f}x"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}, model-derived over "
                        f"{QUICK_MODEL_ROWS} rows")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="data-driven corpus sizes (rows)")
    parser.add_argument("--model-rows", type=int, default=None, help="model-derived corpus size (0: skip)")
    parser.add_argument("--num-proc", type=int, default=min(4, os.cpu_count() or 1),
                        help="datasets.map workers of the data-driven build (default: cores, at most 4)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    common.set_threads(args.threads)
    common.quiet()
    sizes = sorted(args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES))
    model_rows = args.model_rows if args.model_rows is not None else (QUICK_MODEL_ROWS if args.quick
                                                                      else FULL_MODEL_ROWS)
    print(common.machine_facts(), flush=True)
    start_ms = common.reference_ms()
    print(f"reference workload: {start_ms:.1f} ms", flush=True)
    rows = run_scale(sizes, model_rows, args.num_proc if args.num_proc > 1 else None)
    print("\n" + common.drift_report(start_ms) + "\n")
    common.print_table(rows)


if __name__ == "__main__":
    child_parser = argparse.ArgumentParser(add_help=False)
    child_parser.add_argument("--child", default=None)
    child_parser.add_argument("--num-proc", type=int, default=None)
    known, _ = child_parser.parse_known_args()
    if known.child:
        child(known.child, known.num_proc)
    else:
        main()
