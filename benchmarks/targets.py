"""Target building against the bare work it cannot avoid.

- Data-driven: `build_data_driven_targets` over WordNet glosses against one batched call of the
  tokenizer over the same texts (batches of 1000, as the builder uses). Target: build <= 2x.
- Model-derived: `build_model_derived_targets` (frozen model, top-32) against a bare no-grad
  forward + mean pooling over the same texts in the same length-sorted batches of 32. Target <= 1.1x.
"""

from __future__ import annotations

import common  # first: it quiets tqdm before datasets imports it
from common import Row, ratio_row

import shutil
import tempfile

import datasets
import numpy as np

from encoding import bare_encode, batches_of

# (data-driven texts, model-derived texts, repetitions)
SETTINGS = {
    ("tiny", False): (25_000, 4096, 5), ("tiny", True): (5000, 1024, 3),
    ("embedded", False): (25_000, 192, 3), ("embedded", True): (5000, 48, 3),
}


def bare_tokenize(tokenizer, texts: list[str], batch_size: int = 1000) -> None:
    for start in range(0, len(texts), batch_size):
        tokenizer(texts[start:start + batch_size], add_special_tokens=False)


def build_data(tokenizer, dataset):
    from text2token.targets import build_data_driven_targets

    return build_data_driven_targets(dataset, tokenizer)


def build_model(model, dataset):
    from text2token.targets.model_derived import build_model_derived_targets

    work = tempfile.mkdtemp(prefix="t2t-bench-targets-")
    try:
        return build_model_derived_targets(model, dataset, work_dir=work, top_k=32)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(name: str, quick: bool) -> list[Row]:
    n_data, n_model, reps = SETTINGS[(name, quick)]
    model = common.build_model(name, lora=False).eval()
    tok = model.tokenizer
    data_texts = common.corpus(n_data)
    data_set = datasets.Dataset.from_dict({"text": data_texts})
    print(f"[targets] {name}: data-driven over {n_data} glosses, {reps} repetitions", flush=True)
    t = common.compare({"build": lambda: build_data(tok, data_set),
                        "tokenize": lambda: bare_tokenize(tok, data_texts)}, reps=reps)
    for key, timing in t.items():
        print(f"  {key:10s} median {timing.median:.4f}s  ({timing.spread})", flush=True)
    rows = [
        Row(name, "data-driven build texts/s", f"{n_data / t['build'].median:.0f}"),
        ratio_row(name, "data-driven build / bare batched tokenization", t["build"], t["tokenize"], "<=", 2.0),
    ]

    model_texts = common.corpus(n_model)
    model_set = datasets.Dataset.from_dict({"text": model_texts})
    sorted_batches = batches_of(model_texts, 32, np.argsort([-len(x) for x in model_texts], kind="stable"))
    print(f"[targets] {name}: model-derived (top-32) over {n_model} glosses, {reps} repetitions", flush=True)
    t = common.compare({"build": lambda: build_model(model, model_set),
                        "forward": lambda: bare_encode(model, sorted_batches)}, reps=reps)
    for key, timing in t.items():
        print(f"  {key:10s} median {timing.median:.4f}s  ({timing.spread})", flush=True)
    rows += [
        Row(name, "model-derived build texts/s", f"{n_model / t['build'].median:.0f}"),
        ratio_row(name, "model-derived build / bare no-grad forward", t["build"], t["forward"], "<=", 1.1),
    ]
    return rows


def profile(name: str, quick: bool) -> None:
    n_data, n_model, _ = SETTINGS[(name, quick)]
    model = common.build_model(name, lora=False).eval()
    data_set = datasets.Dataset.from_dict({"text": common.corpus(n_data)})
    model_set = datasets.Dataset.from_dict({"text": common.corpus(n_model)})
    build_data(model.tokenizer, data_set)
    print(f"\n=== {name}: cProfile of build_data_driven_targets({n_data} texts) ===")
    print(common.profile(lambda: build_data(model.tokenizer, data_set), sort="tottime"))
    build_model(model, model_set)
    print(f"\n=== {name}: cProfile of build_model_derived_targets({n_model} texts) ===")
    print(common.profile(lambda: build_model(model, model_set), sort="tottime"))


if __name__ == "__main__":
    common.main(run, __doc__.splitlines()[0], profile)
