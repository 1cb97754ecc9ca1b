"""Scale plan: memory per GPU and FLOPs per step of the paper recipes, projected from two decoder
layers of Mistral-7B and Llama-3-8B built at their true widths on the CPU.

Measured (two layers, random weights in bf16, the recipes' LoRA r=16 on q/k/v/o in fp32, bf16
autocast, sdpa attention, a batch of 32 x 128 tokens):
- activation bytes per layer: every tensor autograd saves for the backward pass while the layer
  runs (counted once per storage; weights excluded), with gradient checkpointing off;
- LoRA training state per layer: parameters, gradients and AdamW's two moments after one step;
- FLOPs per layer of one forward + backward (torch.utils.flop_counter).
Computed from the known configs: weights (embedding, 32 layers, norm, untied LM head, bf16), the LM
head's fp32 copy that `Text2TokenModel.project` keeps for the backward pass, and the [batch, vocab]
logits. With gradient checkpointing (all paper recipes) a layer keeps only its input (batch x seq x
hidden, bf16) and one layer's activations are rebuilt at a time during the backward pass.

This is a projection, not a GPU measurement: no CUDA context, allocator fragmentation or NCCL buffers
are in it (add a few GB), and GPU attention kernels may save less than the CPU's.

    python benchmarks/scale_plan.py            # both backbones, ~2 minutes on one core
    python benchmarks/scale_plan.py --batch 4  # a smaller measured batch (scaled to the recipes')
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
GB = 1e9
GPUS = {"80 GB (A100/H100)": 80, "141 GB (H200)": 141}


@dataclass(frozen=True)
class Arch:
    name: str
    model_type: str  # mistral | llama
    vocab: int
    hidden: int = 4096
    intermediate: int = 14336
    heads: int = 32
    kv_heads: int = 8
    layers: int = 32

    def layer_params(self) -> int:
        head_dim = self.hidden // self.heads
        attention = self.hidden * (self.heads * head_dim) * 2 + self.hidden * (self.kv_heads * head_dim) * 2
        return attention + 3 * self.hidden * self.intermediate + 2 * self.hidden  # + two RMSNorms

    def params(self) -> int:
        return 2 * self.vocab * self.hidden + self.layers * self.layer_params() + self.hidden  # untied head


ARCHS = {
    "mistral-7b-instruct": Arch("Mistral-7B", "mistral", vocab=32000),
    "llama-3-8b-instruct": Arch("Llama-3-8B", "llama", vocab=128256),
}


def two_layers(arch: Arch):
    """The decoder of `arch` with two layers at true widths (tiny vocabulary: the embedding and head
    are computed, not built), bf16 weights, LoRA r=16 on q/k/v/o kept in fp32 as text2token does."""
    from peft import LoraConfig, inject_adapter_in_model
    from transformers import LlamaConfig, MistralConfig, AutoModel

    config_class = MistralConfig if arch.model_type == "mistral" else LlamaConfig
    config = config_class(vocab_size=256, hidden_size=arch.hidden, intermediate_size=arch.intermediate,
                          num_attention_heads=arch.heads, num_key_value_heads=arch.kv_heads, num_hidden_layers=2,
                          max_position_embeddings=4096, attn_implementation="sdpa")
    torch.manual_seed(0)
    decoder = AutoModel.from_config(config, dtype=torch.bfloat16)
    decoder.requires_grad_(False)
    inject_adapter_in_model(LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, bias="none",
                                       target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]), decoder)
    for name, param in decoder.named_parameters():
        if "lora_" in name:
            param.data = param.data.float()
            param.requires_grad_(True)
    return decoder


def measure(arch: Arch, batch: int, seq: int) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    decoder = two_layers(arch).train()
    layers = decoder.layers
    weights = {p.untyped_storage().data_ptr() for p in decoder.parameters()}
    current = {"layer": None}
    saved: dict[int, dict[int, int]] = {0: {}, 1: {}}

    def pack(tensor):
        layer = current["layer"]
        storage = tensor.untyped_storage()
        if layer is not None and storage.data_ptr() not in weights:
            saved[layer][storage.data_ptr()] = storage.nbytes()
        return tensor

    for index, layer in enumerate(layers):
        layer.register_forward_pre_hook(lambda module, args, index=index: current.update(layer=index))
        layer.register_forward_hook(lambda module, args, output: current.update(layer=None))
    inputs = torch.randn(batch, seq, arch.hidden, dtype=torch.bfloat16)
    mask = torch.ones(batch, seq, dtype=torch.long)
    start = time.perf_counter()
    with FlopCounterMode(display=False) as flops:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                hidden = decoder(inputs_embeds=inputs, attention_mask=mask).last_hidden_state
            hidden.float().mean().backward()
    seconds = time.perf_counter() - start
    lora = [p for n, p in decoder.named_parameters() if p.requires_grad and ".layers.1." in f".{n}"]
    optimizer = torch.optim.AdamW([p for p in decoder.parameters() if p.requires_grad], lr=5e-5)
    optimizer.step()
    state_bytes = sum(t.numel() * t.element_size() for p in lora for t in optimizer.state[p].values()
                      if torch.is_tensor(t) and t.dim() > 0)
    lora_bytes = sum(p.numel() * p.element_size() * 2 for p in lora) + state_bytes  # params + grads + moments
    return {"activation_bytes_per_layer": sum(saved[1].values()),  # layer 2: its input needs a gradient path
            "activation_bytes_layer1": sum(saved[0].values()),
            "lora_params_per_layer": sum(p.numel() for p in lora), "lora_state_bytes_per_layer": lora_bytes,
            "flops_per_layer": flops.get_total_flops() / 2, "seconds": seconds, "batch": batch, "seq": seq}


@dataclass
class Recipe:
    path: Path
    batch: int
    accumulation: int
    seq: int
    checkpointing: bool


def load_recipe(path: Path) -> Recipe:
    values = yaml.safe_load(path.read_text())
    return Recipe(path, values["per_device_train_batch_size"], values.get("gradient_accumulation_steps", 1),
                  values.get("max_length", 128), bool(values.get("gradient_checkpointing", False)))


# How each launch shards the frozen weights and the LoRA state over its GPUs (one machine).
CONFIGS = {
    "1 GPU (--num_processes 1)": dict(gpus=1, shard_weights=False, shard_lora=False),
    "ddp.yaml (8 GPUs)": dict(gpus=8, shard_weights=False, shard_lora=False),
    "fsdp.yaml (8 GPUs, FSDP2 full shard)": dict(gpus=8, shard_weights=True, shard_lora=True),
    "deepspeed_zero2.yaml (8 GPUs)": dict(gpus=8, shard_weights=False, shard_lora=True),
}


def project(arch: Arch, m: dict, recipe: Recipe, config: dict) -> dict:
    """Bytes per GPU and FLOPs per optimizer step for one recipe under one launch config."""
    scale = recipe.batch * recipe.seq / (m["batch"] * m["seq"])  # activations and FLOPs are linear in tokens
    per_layer = m["activation_bytes_per_layer"] * scale
    layer_input = recipe.batch * recipe.seq * arch.hidden * 2
    if recipe.checkpointing:  # each layer keeps its input; one layer's activations are rebuilt at a time
        activations = arch.layers * layer_input + per_layer
    else:
        activations = arch.layers * per_layer
    activations += 2 * layer_input  # embedding output and final norm
    weights = arch.params() * 2
    gathered = 0.0
    if config["shard_weights"]:
        weights /= config["gpus"]
        gathered = 2 * arch.layer_params() * 2  # FSDP all-gathers a layer (and prefetches the next)
    lora = arch.layers * m["lora_state_bytes_per_layer"] / (config["gpus"] if config["shard_lora"] else 1)
    head = arch.vocab * arch.hidden * 4 + 3 * recipe.batch * arch.vocab * 4  # fp32 head copy, logits, grads
    total = weights + gathered + lora + activations + head
    forward_backward = arch.layers * m["flops_per_layer"] * scale
    if recipe.checkpointing:
        forward_backward += arch.layers * m["flops_per_layer"] * scale / 3  # one more forward (~1/3 of fwd+bwd)
    head_flops = 3 * 2 * recipe.batch * arch.hidden * arch.vocab
    step = (forward_backward + head_flops) * recipe.accumulation
    return {"weights": weights + gathered, "lora": lora, "activations": activations, "head": head, "total": total,
            "flops_per_gpu_step": step, "flops_global_step": step * config["gpus"]}


def table(keys: list[str], results: dict[str, dict], recipes: dict[str, list[Recipe]]) -> list[str]:
    lines = ["| recipe | launch | batch/GPU x accum | weights GB | LoRA state GB | activations GB | head GB | "
             "total GB/GPU | fits 80 GB | fits 141 GB | TFLOPs/step/GPU | TFLOPs/step (all GPUs) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in keys:
        arch = ARCHS[key]
        for recipe in recipes[key]:
            for label, config in CONFIGS.items():
                p = project(arch, results[key], recipe, config)
                lines.append(
                    f"| {recipe.path.relative_to(ROOT)} | {label} | {recipe.batch} x {recipe.accumulation} | "
                    f"{p['weights'] / GB:.1f} | {p['lora'] / GB:.2f} | {p['activations'] / GB:.1f} | {p['head'] / GB:.1f} | "
                    f"**{p['total'] / GB:.1f}** | {'yes' if p['total'] / GB <= 80 else 'no'} | "
                    f"{'yes' if p['total'] / GB <= 141 else 'no'} | {p['flops_per_gpu_step'] / 1e12:.0f} | "
                    f"{p['flops_global_step'] / 1e12:.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="measured batch (the paper's per-device 32)")
    parser.add_argument("--seq", type=int, default=128, help="measured tokens per text (the paper's 128)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", choices=list(ARCHS), default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keys = [args.only] if args.only else list(ARCHS)
    recipes = {key: [load_recipe(p) for p in sorted((ROOT / "recipes" / key).glob("*.yaml"))] for key in keys}
    results = {}
    for key in keys:
        arch = ARCHS[key]
        m = results[key] = measure(arch, args.batch, args.seq)
        print(f"{arch.name}: measured on two layers at {args.batch} x {args.seq} tokens ({m['seconds']:.0f}s): "
              f"activations {m['activation_bytes_per_layer'] / 2**20:.0f} MiB/layer (first layer "
              f"{m['activation_bytes_layer1'] / 2**20:.0f}), LoRA {m['lora_params_per_layer']:,} params/layer "
              f"= {m['lora_state_bytes_per_layer'] / 2**20:.1f} MiB with grads and AdamW moments, "
              f"{m['flops_per_layer'] / 1e12:.2f} TFLOPs/layer forward+backward; "
              f"whole model {arch.params() / 1e9:.2f}B parameters", flush=True)
        scale = 32 * 128 / (m["batch"] * m["seq"])
        print(f"  without gradient checkpointing, 32 x 128 tokens: activations "
              f"{arch.layers * m['activation_bytes_per_layer'] * scale / GB:.1f} GB; the stage-2 model-derived "
              f"pass over 1M texts of 128 tokens: {2 * arch.params() * 128 * 1e6 / 1e18:.2f} EFLOPs (forward only)",
              flush=True)
    print("\nProjection (not measured on a GPU): memory per GPU and FLOPs per optimizer step\n")
    print("\n".join(table(keys, results, recipes)))


if __name__ == "__main__":
    main()
