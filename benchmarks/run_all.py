"""Run every benchmark and print one table: measure, value, target, holds.

    TEXT2TOKEN_CACHE=/tmp/t2tcache python benchmarks/run_all.py --model both --quick

`--quick` (fewer repetitions, smaller inputs, one training step for the embedded model's peak RSS)
takes about 3 minutes for both models on two otherwise idle cores, the full run about 10.
Values are ratios of medians of interleaved repetitions, with the ratio of the fastest runs beside
them; on a shared machine read the two together (see common.py). The reference workload printed at
the start and the end shows whether the machine's speed drifted; if another job shares the CPUs,
`--threads 1` keeps torch's OpenMP threads from stalling (a 2-thread matmul can run 50x slower).
"""

from __future__ import annotations

import common  # first: it quiets tqdm before datasets imports it

import argparse
import time
import traceback

import encoding
import memory
import scaling
import targets
import training_step

BENCHMARKS = {"training_step": training_step, "encoding": encoding, "targets": targets, "scaling": scaling,
              "memory": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.set_defaults(model="both")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS),
                        help="run only these benchmarks")
    args = parser.parse_args()
    common.set_threads(args.threads)
    common.quiet()
    print(common.machine_facts(), flush=True)
    start_ms = common.reference_ms()
    print(f"reference workload: {start_ms:.1f} ms; mode: {'quick' if args.quick else 'full'}", flush=True)
    rows, started = [], time.perf_counter()
    for name in common.models_arg(args.model):
        for key in args.only:
            begin = time.perf_counter()
            try:
                rows += BENCHMARKS[key].run(name, args.quick)
            except Exception as exc:  # one broken benchmark must not hide the others' results
                traceback.print_exc()
                rows.append(common.Row(name, f"{key} failed", f"{type(exc).__name__}: {exc}"[:80], "-", "error"))
            print(f"[{key}] {name}: {time.perf_counter() - begin:.0f}s", flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f}s; " + common.drift_report(start_ms) + "\n")
    common.print_table(rows)
    missed = [r for r in rows if r.holds in ("no", "error")]
    print(f"\n{sum(r.holds == 'yes' for r in rows)} targets hold, {len(missed)} missed or failed"
          + ("".join(f"\n  - {r.model}: {r.measure}: {r.value} (target {r.target})" for r in missed)))


if __name__ == "__main__":
    main()
