"""Sparse (top-k vocabulary) vs dense vs hybrid retrieval on the offline man-page task.

    python recipes/sparse_retrieval.py --model PATH [--k 64] [--alpha 0.5] [--json out.json]

PATH is a saved Text2Token model, or a plain causal-LM folder (wrapped with mean pooling).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from text2token.explain import load_model
from text2token.sparse_retrieval import evaluate_manpage_retrieval, render_comparison


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--k", type=int, default=64, help="tokens kept per sparse vector")
    parser.add_argument("--alpha", type=float, default=0.5, help="hybrid weight of the sparse scores")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_queries", type=int, default=None, help="quick runs only: not comparable")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    result = evaluate_manpage_retrieval(load_model(args.model), k=args.k, alpha=args.alpha,
                                        batch_size=args.batch_size, max_queries=args.max_queries)
    print(f"model: {args.model}")
    print(render_comparison(result))
    if args.json:
        record = {**dataclasses.asdict(result), "quality_ratio": result.quality_ratio, "size_ratio": result.size_ratio,
                  "search_time_ratio": result.search_time_ratio, "end_to_end_time_ratio": result.end_to_end_time_ratio}
        with open(args.json, "w") as handle:
            json.dump(record, handle, indent=2)
    return result


if __name__ == "__main__":
    main()
