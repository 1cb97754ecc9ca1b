"""How data-driven target building and encoding grow with the corpus: 1k, 10k, 100k texts (tiny model).

Linear growth shows as a flat time per 1k rows from 10k to 100k (1k carries the fixed costs). That
no per-row Python overhead dominates shows as a flat ratio to the bare work at each scale: batched
tokenization for the build, a bare no-grad forward + mean pooling for `encode`. Texts are WordNet
glosses (cycled past 25k) truncated at 32 tokens for encoding.
"""

from __future__ import annotations

import common  # first: it quiets tqdm before datasets imports it
from common import Row

import datasets
import numpy as np

from encoding import bare_encode, batches_of
from targets import bare_tokenize, build_data

SCALES = (1_000, 10_000, 100_000)
MAX_TOKENS = 32
# Linear growth allows this much more time per row at 100k than at 10k (noise, cache misses).
LINEAR_SLACK = 1.3


def reps_for(n: int, quick: bool) -> int:
    return (3 if n < 100_000 else 1) if quick else (5 if n < 100_000 else 2)


def run(name: str, quick: bool) -> list[Row]:
    if name != "tiny":
        print("[scaling] runs on the tiny model only", flush=True)
        return []
    model = common.build_model("tiny", lora=False, max_length=MAX_TOKENS).eval()
    tok = model.tokenizer
    per_1k = {"build": {}, "encode": {}}
    rows = []
    for n in SCALES:
        texts = common.corpus(n)
        dataset = datasets.Dataset.from_dict({"text": texts})
        order = np.argsort([-len(t) for t in texts], kind="stable")
        batches = batches_of(texts, 32, order)
        reps = reps_for(n, quick)
        t = common.compare({
            "build": lambda: build_data(tok, dataset),
            "tokenize": lambda: bare_tokenize(tok, texts),
            "encode": lambda: model.encode(texts, batch_size=32, show_progress_bar=False),
            "forward": lambda: bare_encode(model, batches),
        }, reps=reps, warmup=1 if n < 100_000 else 0)
        for key in ("build", "encode"):
            per_1k[key][n] = t[key].median / n * 1000
        print(f"[scaling] {n:>7} texts ({reps} reps): build {t['build'].median:.3f}s "
              f"(tokenize {t['tokenize'].median:.3f}s), encode {t['encode'].median:.3f}s "
              f"(bare forward {t['forward'].median:.3f}s)", flush=True)
        rows += [
            Row(name, f"data-driven build @{n // 1000}k: s per 1k rows",
                f"{per_1k['build'][n]:.4f} (x{t['build'].median / t['tokenize'].median:.2f} bare tokenization)"),
            Row(name, f"encode @{n // 1000}k: s per 1k rows",
                f"{per_1k['encode'][n]:.4f} (x{t['encode'].median / t['forward'].median:.2f} bare forward)"),
        ]
    for key, label in (("build", "data-driven build"), ("encode", "encode")):
        growth = per_1k[key][SCALES[-1]] / per_1k[key][SCALES[-2]]
        rows.append(Row(name, f"{label}: per-row time 100k / 10k", f"{growth:.2f}x", f"<= {LINEAR_SLACK:g}x",
                        "yes" if growth <= LINEAR_SLACK else "no"))
    return rows


def profile(name: str, quick: bool) -> None:
    model = common.build_model("tiny", lora=False, max_length=MAX_TOKENS).eval()
    texts = common.corpus(SCALES[-1])
    dataset = datasets.Dataset.from_dict({"text": texts})
    print(f"\n=== tiny: cProfile of build_data_driven_targets({len(texts)} texts) ===")
    print(common.profile(lambda: build_data(model.tokenizer, dataset), sort="tottime"))
    print(f"\n=== tiny: cProfile of encode({len(texts)} texts) ===")
    print(common.profile(lambda: model.encode(texts, batch_size=32, show_progress_bar=False), sort="tottime"))


if __name__ == "__main__":
    common.main(run, __doc__.splitlines()[0], profile)
