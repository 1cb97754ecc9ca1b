#!/usr/bin/env bash
# GPU smoke test, for a machine with CUDA GPUs, in under ten minutes from a fresh clone:
#   1. set-up: scripts/setup.sh into its own venv (.venv-gpu) with a CUDA build of torch (TORCH_SPEC);
#   2. bf16 stage 1 + stage 2 of the embedded default, last pooling, gradient checkpointing, batch 32 of
#      texts that fill 128 tokens (20 steps each), with the conversion, each target pass, training and
#      the final save timed apart; the stage-2 target pass must run on cuda;
#   3. `encode` throughput of the trained model on texts that fill 512 and 1024 tokens (bf16, placed by
#      the evaluation loader, which must put it on cuda);
#   4. one DDP step on every visible GPU (torchrun, one process per GPU): the Trainer must wrap the model
#      in DistributedDataParallel (NCCL) and all-reduce the gradients;
# then a summary with per-phase times, devices, losses, throughput and torch.cuda.max_memory_allocated.
# It has not run on a GPU yet in this project's CI (no GPU there): only --dry-run is tested.
#
#   bash benchmarks/gpu_smoke.sh              # on the GPU machine
#   bash benchmarks/gpu_smoke.sh --dry-run    # the same steps on the CPU at tiny sizes (or GPU_SMOKE_DRY_RUN=1)
#
# Environment: TORCH_SPEC (default torch==2.13.0: PyPI's Linux wheel is the CUDA build), GPU_SMOKE_VENV
# (default .venv-gpu; the dry run uses TEXT2TOKEN_VENV or .venv), GPU_SMOKE_OUT (default outputs/gpu_smoke),
# GPU_SMOKE_BACKBONE (default the embedded default; the test suite's dry run passes a tiny random model).
set -euo pipefail
cd "$(dirname "$0")/.."

dry="${GPU_SMOKE_DRY_RUN:-0}"
for arg in "$@"; do
    case "$arg" in
        --dry-run) dry=1 ;;
        *) echo "usage: bash benchmarks/gpu_smoke.sh [--dry-run]" >&2; exit 2 ;;
    esac
done

if [ "$dry" = 1 ]; then
    venv="${TEXT2TOKEN_VENV:-.venv}"
    sizes=(--cpu --batch 2 --max_length 16)
    train_sizes=(--steps 2)
    encode_sizes=(--texts 2 --encode_lengths 64 128 --encode_batch 2)
    ranks=2  # two gloo processes: the multi-rank path runs on the CPU too
    limit=1200  # bf16 on a CPU is slow, and CI machines are shared
    mode="DRY RUN on the CPU (tiny sizes; no GPU numbers)"
else
    venv="${GPU_SMOKE_VENV:-.venv-gpu}"
    sizes=(--batch 32 --max_length 128)
    train_sizes=(--steps 20)
    encode_sizes=(--texts 1024 --encode_lengths 512 1024 --encode_batch 16)
    ranks=""  # every visible GPU, counted once torch is installed
    limit=360
    mode="GPU"
fi
out="${GPU_SMOKE_OUT:-outputs/gpu_smoke}"
py="$venv/bin/python"
log="$out/smoke.log"
rm -rf "$out"
mkdir -p "$out"
started=$SECONDS

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, keep its output, stop the smoke test on failure
    local name="$1" limit="$2"
    shift 2
    echo "== $name" | tee -a "$log"
    local t0=$SECONDS
    if ! timeout "$limit" "$@" 2>&1 | tee -a "$log"; then
        echo "gpu_smoke: step '$name' failed or ran past ${limit}s; its output is in $log" >&2
        exit 1
    fi
    echo "SMOKE {\"step\": \"$name-wall\", \"wall_s\": $((SECONDS - t0))}" >>"$log"
}

if [ "$dry" = 1 ] && "$py" -c "import text2token" 2>/dev/null; then
    echo "== setup: $venv already holds text2token (dry run: set-up skipped)" | tee -a "$log"
else
    step setup 420 env TEXT2TOKEN_VENV="$venv" TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}" bash scripts/setup.sh
fi
if [ "$dry" != 1 ]; then
    step cuda-check 60 "$py" -c "import torch
assert torch.cuda.is_available(), 'torch sees no CUDA device (is TORCH_SPEC a CUDA build?)'
print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))"
fi
backbone=()
if [ -n "${GPU_SMOKE_BACKBONE:-}" ]; then
    backbone=(--backbone "$GPU_SMOKE_BACKBONE")
fi
step train+encode "$limit" "$py" benchmarks/gpu_smoke.py train encode --out "$out" "${sizes[@]}" "${train_sizes[@]}" \
    "${encode_sizes[@]}" "${backbone[@]}"
if [ -z "$ranks" ]; then
    ranks=$("$py" -c "import torch; print(max(1, torch.cuda.device_count()))")
fi
step ddp "$limit" "$py" -m torch.distributed.run --standalone --nproc_per_node "$ranks" benchmarks/gpu_smoke.py ddp \
    --out "$out" "${sizes[@]}" "${backbone[@]}"

"$py" - "$log" "$mode" "$((SECONDS - started))" <<'EOF'
import json, sys
log, mode, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [json.loads(line[6:]) for line in open(log, encoding="utf-8") if line.startswith("SMOKE ")]
print(f"\n==== gpu_smoke summary ({mode}) ====")
for row in rows:
    if row["step"].endswith("-wall"):
        continue
    step = row.pop("step")
    print(f"{step:8s} " + "  ".join(f"{key}={value}" for key, value in row.items()))
print(f"total wall time: {total} s")
missing = {"convert", "stage1", "stage2", "ddp"} - {row.get("step") for row in
                                                  (json.loads(l[6:]) for l in open(log) if l.startswith("SMOKE "))}
if not any(str(row.get("step")).startswith("encode-") for row in
           (json.loads(l[6:]) for l in open(log) if l.startswith("SMOKE "))):
    missing.add("encode")
if missing:
    sys.exit(f"gpu_smoke: no result from {sorted(missing)}")
EOF
