"""Mixed precision: a bf16 backbone trains fp32 LoRA weights, so small AdamW steps are not rounded away."""

import copy

import datasets
import numpy as np
import pytest
import torch

from model_fixtures import LORA, tiny_backbone
from text2token import Text2TokenModel
from text2token.arguments import Text2TokenTrainingArguments
from text2token.targets import build_data_driven_targets
from text2token.trainer import Text2TokenTrainer

TEXTS = ["Photosynthesis converts light energy into chemical energy.", "A small boat crossed the cold lake.",
         "The orchestra played a symphony by Brahms.", "Volcanic ash covered the village overnight."] * 4


def _lora(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def _model(real_tokenizer, dtype):
    backbone = tiny_backbone(len(real_tokenizer), real_tokenizer.pad_token_id).to(torch.bfloat16).to(dtype)
    model = Text2TokenModel.from_backbone(backbone, copy.deepcopy(real_tokenizer), max_length=32, lora=LORA)
    torch.manual_seed(1)
    with torch.no_grad():  # peft starts lora_B at 0, where lora_A gets no gradient: give both some weight
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.2)
    return model


def _one_step(model, targets, tmp_path, bf16: bool):
    args = Text2TokenTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=16, max_steps=1,
                                       learning_rate=5e-5, lr_scheduler_type="constant", weight_decay=0.0,
                                       bf16=bf16, use_cpu=True, report_to="none", save_strategy="no", seed=0)
    before = _lora(model)
    Text2TokenTrainer(model=model, args=args, train_dataset=targets).train()
    return {n: (p.detach() - before[n]) for n, p in _lora(model).items()}


def test_lora_is_fp32_on_a_bf16_backbone_and_reloads_so(real_tokenizer, tmp_path):
    model = _model(real_tokenizer, torch.bfloat16)
    assert {p.dtype for n, p in model.named_parameters() if "lora_" in n} == {torch.float32}
    assert model.backbone.get_input_embeddings().weight.dtype == torch.bfloat16
    model.save_pretrained(tmp_path / "m")
    reloaded = Text2TokenModel.from_pretrained(tmp_path / "m", dtype=torch.bfloat16)
    assert {p.dtype for n, p in reloaded.named_parameters() if "lora_" in n} == {torch.float32}
    for name, value in _lora(model).items():
        torch.testing.assert_close(dict(reloaded.named_parameters())[name], value)


def test_a_bf16_step_at_lr_5e_5_moves_the_lora_weights_like_fp32(real_tokenizer, tmp_path):
    targets = build_data_driven_targets(datasets.Dataset.from_dict({"text": TEXTS}), real_tokenizer, max_length=32)
    update_bf16 = _one_step(_model(real_tokenizer, torch.bfloat16), targets, tmp_path / "bf16", bf16=True)
    update_fp32 = _one_step(_model(real_tokenizer, torch.float32), targets, tmp_path / "fp32", bf16=False)
    flat_bf16 = torch.cat([u.flatten() for u in update_bf16.values()])
    flat_fp32 = torch.cat([update_fp32[n].flatten() for n in update_bf16])
    changed = (flat_bf16 != 0).float().mean().item()
    assert changed >= 0.99, f"only {changed:.1%} of the LoRA entries moved"
    cosine = torch.nn.functional.cosine_similarity(flat_bf16, flat_fp32, dim=0).item()
    assert cosine >= 0.99, f"bf16 and fp32 updates disagree (cosine {cosine:.4f})"


def test_merged_save_is_written_in_the_backbone_dtype_from_fp32_math(real_tokenizer, tmp_path):
    model = _model(real_tokenizer, torch.bfloat16)
    name = next(n for n in model.state_dict() if n.endswith("q_proj.base_layer.weight"))
    prefix = name[: -len(".base_layer.weight")]
    state = model.state_dict()
    expected = (state[name].float() + LORA["lora_alpha"] / LORA["r"]
                * state[f"{prefix}.lora_B.default.weight"] @ state[f"{prefix}.lora_A.default.weight"]).to(torch.bfloat16)
    model.save_pretrained(tmp_path / "merged", merge_lora=True)
    merged = Text2TokenModel.from_pretrained(tmp_path / "merged")
    weight = merged.state_dict()[name.replace(".base_layer", "")]
    assert weight.dtype == torch.bfloat16
    assert torch.equal(weight, expected)
