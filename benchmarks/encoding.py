"""Encoding throughput: `Text2TokenModel.encode` against a bare loop, and what length sorting buys.

- `encode` vs bare: the bare loop tokenizes the same length-sorted batches, runs the backbone's
  decoder under `no_grad` and mean-pools; what is left is `encode`'s own bookkeeping.
- Length-sorted vs naive order: on a mixed-length corpus (log-uniform lengths, up to max_length)
  the naive order pads most batches to their longest text; `encode` sorts by length first.
"""

from __future__ import annotations

import common  # first: it quiets tqdm before datasets imports it
from common import Row, ratio_row

import numpy as np
import torch

# (texts, batch size, max tokens, repetitions)
SETTINGS = {
    ("tiny", False): (2048, 32, 128, 9), ("tiny", True): (1024, 32, 128, 5),
    ("embedded", False): (128, 16, 128, 5), ("embedded", True): (48, 16, 128, 3),
}


def bare_encode(model, batches: list[list[str]]) -> torch.Tensor:
    """Tokenize, decoder forward without gradients, mean over real tokens: nothing else."""
    decoder = model.backbone.get_decoder()
    out = []
    with torch.no_grad():
        for texts in batches:
            inputs = model.tokenizer(texts, padding=True, truncation=True, max_length=model.config.max_length,
                                     return_tensors="pt")
            hidden = decoder(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append((hidden * mask).sum(1) / mask.sum(1))
    return torch.cat(out)


def batches_of(texts: list[str], batch_size: int, order=None) -> list[list[str]]:
    order = range(len(texts)) if order is None else order
    ordered = [texts[i] for i in order]
    return [ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)]


def setup(name: str, quick: bool):
    n, batch_size, max_tokens, reps = SETTINGS[(name, quick)]
    model = common.build_model(name, lora=False, max_length=max_tokens).eval()
    texts = common.mixed_length_texts(n, max_words=max_tokens)
    return model, texts, batch_size, reps


def run(name: str, quick: bool) -> list[Row]:
    model, texts, batch_size, reps = setup(name, quick)
    # The same batches `encode` forms (it sorts by character length, longest first).
    sorted_batches = batches_of(texts, batch_size, np.argsort([-len(t) for t in texts], kind="stable"))
    naive_batches = batches_of(texts, batch_size)
    encoded = model.tokenizer(texts, truncation=True, max_length=model.config.max_length)
    tokens = [len(ids) for ids in encoded["input_ids"]]
    print(f"[encoding] {name}: {len(texts)} texts of {min(tokens)}-{max(tokens)} tokens (median "
          f"{int(np.median(tokens))}), batch {batch_size}, {reps} repetitions", flush=True)
    t = common.compare({
        "encode": lambda: model.encode(texts, batch_size=batch_size, show_progress_bar=False),
        "bare_sorted": lambda: bare_encode(model, sorted_batches),
        "bare_naive": lambda: bare_encode(model, naive_batches),
    }, reps=reps)
    for key, timing in t.items():
        print(f"  {key:12s} median {timing.median:.4f}s  ({timing.spread})", flush=True)
    return [
        Row(name, "encode texts/s (mixed lengths)", f"{len(texts) / t['encode'].median:.1f}"),
        ratio_row(name, "encode / bare no-grad forward + mean pool time", t["encode"], t["bare_sorted"], "<=", 1.05),
        ratio_row(name, "encode (length-sorted) speed-up over naive order", t["bare_naive"], t["encode"], ">=", 1.5),
    ]


def profile(name: str, quick: bool) -> None:
    model, texts, batch_size, _ = setup(name, quick)
    model.encode(texts[:64], batch_size=batch_size, show_progress_bar=False)
    print(f"\n=== {name}: cProfile of encode({len(texts)} texts) ===")
    print(common.profile(lambda: model.encode(texts, batch_size=batch_size, show_progress_bar=False), sort="tottime"))


if __name__ == "__main__":
    common.main(run, __doc__.splitlines()[0], profile)
