"""Shared helpers of the benchmarks: models, corpora, side-by-side timing, result rows.

Every benchmark compares candidates *side by side in one process*: the candidates run interleaved
(A, B, A, B, ...) after a warm-up, and each reports the median of its repetitions. On a shared,
noisy machine a ratio of such medians is far steadier than any absolute time.

Models: `tiny` is a 2-layer random Llama with the embedded default's real 49k vocabulary (so the
LM-head projection and the targets are full size while the decoder costs almost nothing); `embedded`
is the embedded default, SmolLM2-135M-Instruct (set TEXT2TOKEN_CACHE to reuse a converted copy).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import math
import os
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

# tqdm reads its TQDM_* overrides at import: set before anything imports it, so library progress bars
# (model-derived shards, datasets.map) stay out of the tables.
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

MODELS = ("tiny", "embedded")


# --------------------------------------------------------------------------- models
@functools.lru_cache(maxsize=None)
def _tokenizer(name: str):
    from transformers import AutoTokenizer

    if name == "tiny":
        # The GGUF file holds the real tokenizer; reading it needs no conversion of the weights.
        from text2token.backbones import embedded_gguf_path

        gguf = embedded_gguf_path()
        return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    return AutoTokenizer.from_pretrained(embedded_folder())


def tokenizer(name: str):
    """A fresh copy per caller (the model sets a pad token on its own)."""
    import copy

    return copy.deepcopy(_tokenizer(name))


@functools.lru_cache(maxsize=None)
def embedded_folder() -> str:
    from text2token.backbones import resolve_backbone

    return resolve_backbone("embedded")


def tiny_backbone(vocab_size: int, pad_token_id: int | None, seed: int = 0):
    """2 layers, hidden 32: the decoder is negligible next to a [vocab=49152, 32] head."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, pad_token_id=pad_token_id)
    return LlamaForCausalLM(config)


def build_model(name: str, *, lora: bool = True, max_length: int = 128):
    """A `Text2TokenModel` of `name` ('tiny' | 'embedded'), with a fresh paper-default LoRA if `lora`."""
    from text2token import Text2TokenModel

    tok = tokenizer(name)
    if name == "tiny":
        backbone = tiny_backbone(len(tok), tok.pad_token_id)
        model = Text2TokenModel.from_backbone(backbone, tok, max_length=max_length)
    elif name == "embedded":
        model = Text2TokenModel.from_backbone(embedded_folder(), tok, max_length=max_length)
    else:
        raise ValueError(f"model={name!r}: expected one of {MODELS}")
    if lora:
        add_lora(model)
    return model


def add_lora(model) -> None:
    """The paper's adapter (r=16, alpha=32, dropout=0.05 on q/k/v/o: the library's defaults)."""
    model.add_lora()
    # peft starts lora_B at zero; random values make the adapter's compute real, as mid-training.
    with torch.no_grad():
        for pname, param in model.named_parameters():
            if "lora_B" in pname:
                param.normal_(std=0.02)


# --------------------------------------------------------------------------- corpora
@functools.lru_cache(maxsize=1)
def glosses() -> tuple[str, ...]:
    """The packaged WordNet glosses (25k short English texts)."""
    import pyarrow.parquet as pq

    from text2token.corpora import DEFAULT_CORPUS, packaged_corpus_path

    path = packaged_corpus_path(DEFAULT_CORPUS)
    return tuple(pq.read_table(path, columns=["text"]).column("text").to_pylist())


def corpus(n: int) -> list[str]:
    """`n` glosses, cycling through the packaged corpus when `n` exceeds it."""
    base = glosses()
    return [base[i % len(base)] for i in range(n)]


@functools.lru_cache(maxsize=1)
def _words() -> tuple[str, ...]:
    return tuple(" ".join(glosses()).split())


def _word_stream_text(start: int, n_words: int) -> str:
    words = _words()
    start %= len(words) - n_words
    return " ".join(words[start:start + n_words])


def mixed_length_texts(n: int, max_words: int = 100, min_words: int = 2, seed: int = 0) -> list[str]:
    """Texts whose lengths are log-uniform between `min_words` and `max_words` words (about 1.3 tokens
    per word), cut from the gloss word stream: many short texts, a tail of long ones, as in real corpora."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        size = int(round(math.exp(rng.uniform(math.log(min_words), math.log(max_words)))))
        out.append(_word_stream_text(rng.randrange(len(_words())), size))
    return out


def fixed_length_texts(n: int, tokens: int, seed: int = 0) -> list[str]:
    """Texts of at least `tokens` tokens (one word is at least one token), so that truncation at
    `max_length=tokens` gives a batch of exactly `n x tokens`."""
    rng = random.Random(seed)
    return [_word_stream_text(rng.randrange(len(_words())), tokens) for _ in range(n)]


# --------------------------------------------------------------------------- timing
@dataclass
class Timing:
    median: float
    samples: list[float]

    @property
    def spread(self) -> str:
        return f"{min(self.samples):.3g}-{max(self.samples):.3g}s"


def compare(candidates: dict[str, Callable[[], object]], *, reps: int, warmup: int = 1) -> dict[str, Timing]:
    """Seconds per call of each candidate: `warmup` untimed rounds, then `reps` timed rounds, the
    candidates interleaved within each round so that a load change on the machine hits all alike."""
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    samples = {name: [] for name in candidates}
    for _ in range(reps):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: Timing(statistics.median(s), s) for name, s in samples.items()}


def profile(fn: Callable[[], object], top: int = 25, sort: str = "cumulative") -> str:
    """cProfile's top entries of one call of `fn`, as text."""
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).strip_dirs().sort_stats(sort).print_stats(top)
    return out.getvalue()


# --------------------------------------------------------------------------- results
@dataclass
class Row:
    model: str
    measure: str
    value: str
    target: str = "-"
    holds: str = "info"  # yes | no | info (a reported quantity without a target)


def ratio_row(model: str, measure: str, num: Timing | float, den: Timing | float, op: str, bound: float) -> Row:
    """`num / den` judged against `op bound`. Given timings, the value is the ratio of medians and the
    ratio of the fastest runs is shown beside it: on a loaded machine the fastest run of each is the
    one least disturbed by other work, so where the two disagree the noise is the story."""
    if isinstance(num, Timing):
        ratio = num.median / den.median
        value = f"{ratio:.2f}x (fastest runs: {min(num.samples) / min(den.samples):.2f}x)"
    else:
        ratio = num / den
        value = f"{ratio:.2f}x"
    holds = ratio >= bound if op == ">=" else ratio <= bound
    return Row(model, measure, value, f"{op} {bound:g}x", "yes" if holds else "no")


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_facts() -> str:
    return (f"torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
            f"interop threads {torch.get_num_interop_threads()}, os.cpu_count {os.cpu_count()}, "
            f"load average {load_average()} (a load above the core count means other work shares "
            f"the CPUs: trust ratios, not absolute times)")


def drift_report(start_ms: float) -> str:
    return (f"reference workload: {start_ms:.1f} ms at the start, {reference_ms():.1f} ms at the end; "
            f"load average {load_average()}")


def reference_ms(rounds: int = 5) -> float:
    """Median milliseconds of a fixed small workload (matmuls + a Python loop): printed before and
    after a run, it shows how much the machine's speed drifted while the benchmarks ran."""
    a = torch.randn(256, 256)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(50):
            a @ a
        sum(range(200_000))
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def print_table(rows: list[Row]) -> None:
    headers = ("model", "measure", "value", "target", "holds")
    cells = [headers] + [(r.model, r.measure, r.value, r.target, r.holds) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    for k, cell in enumerate(cells):
        print("  ".join(text.ljust(w) for text, w in zip(cell, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def quiet() -> None:
    """Progress bars and per-call warnings would drown the tables."""
    import logging

    import datasets
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("text2token").setLevel(logging.ERROR)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="tiny", choices=[*MODELS, "both"])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller inputs")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice). With other jobs on the CPUs, 1 thread "
                             "avoids OpenMP threads stalling at barriers for a descheduled sibling")


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # for the subprocesses (memory.py)


def models_arg(value: str) -> list[str]:
    return list(MODELS) if value == "both" else [value]


def main(run: Callable[[str, bool], list[Row]], description: str,
         profile_fn: Callable[[str, bool], None] | None = None) -> None:
    """Command line of each standalone benchmark: --model tiny|embedded|both, --quick, --profile."""
    parser = argparse.ArgumentParser(description=description)
    add_common_args(parser)
    if profile_fn is not None:
        parser.add_argument("--profile", action="store_true", help="print profiles of the library calls instead")
    args = parser.parse_args()
    set_threads(args.threads)
    quiet()
    print(machine_facts(), flush=True)
    start_ms = reference_ms()
    print(f"reference workload: {start_ms:.1f} ms", flush=True)
    if getattr(args, "profile", False):
        for name in models_arg(args.model):
            profile_fn(name, args.quick)
        return
    rows = []
    for name in models_arg(args.model):
        rows += run(name, args.quick)
    print("\n" + drift_report(start_ms) + "\n")
    print_table(rows)
    sys.stdout.flush()
