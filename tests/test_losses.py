"""The objectives as loss modules: SimCSE with dropout noise, MNTP, the registry and the trainer's logs;
the token-target KL and the in-batch contrastive loss against hand computations."""

import copy

import datasets
import pytest
import torch
import torch.nn.functional as F

from text2token import Text2TokenModel
from text2token.arguments import DataArguments, ModelArguments, Text2TokenTrainingArguments, parse_recipe_args
from text2token.losses import (LOSSES, MNTPLoss, SimCSELoss, TokenTargetLoss, build_loss, mask_for_mntp,
                               token_target_kl)
from text2token.targets import build_data_driven_targets
from text2token.trainer import Text2TokenTrainer

from model_fixtures import SENTENCES, tiny_backbone

# A fresh adapter as a run starts it: lora_B at zero, LoRA dropout on (the paper's 0.05).
FRESH_LORA = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def _model(tokenizer, attention="causal", seed=0, head_scale=1.0):
    backbone = tiny_backbone(len(tokenizer), tokenizer.pad_token_id, seed=seed)
    with torch.no_grad():
        backbone.get_decoder().norm.weight.mul_(head_scale)  # scales what the LM head sees, nothing before it
    return Text2TokenModel.from_backbone(backbone, copy.deepcopy(tokenizer), max_length=48, attention=attention,
                                         lora=FRESH_LORA)


def _batch(model, texts=SENTENCES):
    return dict(model.tokenize(texts, max_length=48))


def _args(tmp_path, **overrides):
    values = dict(output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=4, learning_rate=1e-2,
                  logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, seed=0)
    values.update(overrides)
    return Text2TokenTrainingArguments(**values)


def _two_views(model, batch):
    doubled = {k: torch.cat([v, v]) for k, v in batch.items()}
    with torch.no_grad():
        return model(**doubled, return_logits=False).embeddings.chunk(2)


def _same(a, b) -> bool:
    """Equal up to float reassociation: a row's result may depend in its last bits on where it sits in
    a multithreaded batch; the noise moves the views by orders of magnitude more (cosine < 1 - 1e-4)."""
    return torch.allclose(a, b, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------------------------- SimCSE
def test_simcse_views_are_identical_without_noise_and_differ_at_step_0_with_it(real_tokenizer):
    model = _model(real_tokenizer).train()
    batch = _batch(model)
    torch.manual_seed(0)
    a, b = _two_views(model, batch)
    # The defect the noise fixes: no dropout in SmolLM2/Llama, LoRA dropout feeds a zero lora_B.
    assert _same(a, b)
    loss = SimCSELoss(model)
    torch.manual_seed(0)
    a, b = _two_views(model, batch)
    cosine = torch.nn.functional.cosine_similarity(a, b)
    assert (cosine < 1 - 1e-4).all(), cosine
    assert loss(batch).components["positive_cosine"].item() < 1 - 1e-4
    # Noise acts in train mode only: encoding stays deterministic.
    model.eval()
    assert _same(*_two_views(model, batch))
    model.train()
    with loss.noise.suspended():  # another objective's step on the same model
        assert _same(*_two_views(model, batch))
    assert not _same(*_two_views(model, batch))
    loss.remove_noise()
    assert _same(*_two_views(model, batch))


@pytest.mark.parametrize("attention_dropout, hidden_dropout", [(0.3, 0.0), (0.0, 0.1)])
def test_each_kind_of_simcse_noise_alone_makes_the_views_differ(real_tokenizer, attention_dropout, hidden_dropout):
    model = _model(real_tokenizer).train()
    SimCSELoss(model, attention_dropout=attention_dropout, hidden_dropout=hidden_dropout)
    torch.manual_seed(0)
    a, b = _two_views(model, _batch(model))
    assert not torch.allclose(a, b)


# Distinct texts: duplicates in a batch would be false negatives and keep any contrastive loss up.
DISTINCT = ["The cat sat on the mat.", "Dogs run through the park in the afternoon.",
            "Photosynthesis converts light into chemical energy.", "The stock market fell sharply on Monday.",
            "She played the violin at the concert.", "Rain is expected over the weekend.",
            "The bridge was built in the nineteenth century.", "He forgot his keys at the office.",
            "Volcanoes release gas and ash.", "A recipe for bread needs flour, water and yeast.",
            "The team won the championship final.", "Mountains are covered in snow in winter.",
            "The library opens at nine in the morning.", "Electric cars use batteries instead of fuel.",
            "Bees make honey from nectar.", "The novel was translated into twelve languages."]


def test_simcse_loss_does_not_collapse(real_tokenizer, tmp_path):
    texts = datasets.Dataset.from_dict({"text": DISTINCT})

    def train(lora_dropout, **noise):
        model = _model(real_tokenizer)
        model.merge_lora()
        model.add_lora({**FRESH_LORA, "lora_dropout": lora_dropout})
        args = _args(tmp_path / f"{lora_dropout}{noise}", max_steps=12, per_device_train_batch_size=8)
        trainer = Text2TokenTrainer(model=model, args=args, train_dataset=texts, loss=SimCSELoss(model, **noise))
        trainer.train()
        return [log for log in trainer.state.log_history if "contrastive" in log]

    noisy = train(0.05)
    silent = train(0.0, attention_dropout=0.0, hidden_dropout=0.0)  # the control: no noise anywhere
    assert len(noisy) == len(silent) == 12
    # Without noise every positive pair is one vector (cosine 1): the loss only pushes negatives apart
    # and falls to its floor, the collapse the README's SimCSE row suffered (8e-5).
    assert all(log["positive_cosine"] > 1 - 1e-5 for log in silent)
    # With it the views stay apart over the whole run, so the positives keep a loss to learn from.
    assert all(log["positive_cosine"] < 0.99 for log in noisy)
    mean = lambda logs: sum(log["contrastive"] for log in logs) / len(logs)  # noqa: E731
    assert mean(noisy) > 3 * mean(silent), (mean(noisy), mean(silent))


def test_simcse_rates_are_checked(real_tokenizer):
    with pytest.raises(ValueError, match=r"attention_dropout=1.5: must be in \[0, 1\)"):
        SimCSELoss(_model(real_tokenizer), attention_dropout=1.5)


# ----------------------------------------------------------------------------------------------- MNTP
def test_mntp_masks_only_real_non_special_tokens_with_a_previous_position():
    torch.manual_seed(0)
    ids = torch.randint(10, 1000, (64, 40))
    ids[:, -5:] = 2  # padding (the pad id is special)
    mask = torch.ones_like(ids)
    mask[:, -5:] = 0
    ids[:, 7] = 1  # a special token inside the text
    corrupted, chosen = mask_for_mntp(ids, mask, probability=0.2, mask_id=79, vocab_size=1000, special_ids=[0, 1, 2])
    assert not chosen[:, 0].any() and not chosen[:, 7].any() and not chosen[:, -5:].any()
    share = chosen.sum().item() / (64 * 33)  # eligible: positions 1..34 except 7
    assert 0.17 < share < 0.23
    as_mask = (corrupted[chosen] == 79).float().mean().item()
    unchanged = (corrupted[chosen] == ids[chosen]).float().mean().item()
    assert 0.74 < as_mask < 0.86 and 0.05 < unchanged < 0.16
    assert torch.equal(corrupted[~chosen], ids[~chosen])


def test_mntp_predicts_masked_tokens_from_the_previous_position_without_full_logits(real_tokenizer):
    model = _model(real_tokenizer, attention="bidirectional")
    loss = MNTPLoss(model)
    assert loss.mask_token == "_" and loss.mask_id == real_tokenizer.convert_tokens_to_ids("_")
    batch = _batch(model)
    seen = []
    project = model.project
    model.project = lambda h: seen.append(tuple(h.shape)) or project(h)
    torch.manual_seed(0)
    result = loss(batch)
    assert torch.isfinite(result.loss)
    masked = int(result.components["masked_tokens"].item())
    real_tokens = int(batch["attention_mask"].sum())
    assert seen == [(masked, model.config.lm_config.hidden_size)] and 0 < masked < real_tokens


def test_mntp_loss_falls_on_the_tiny_backbone(real_tokenizer, tmp_path):
    # The tiny backbone's head is its embedding (tied, std 0.02): its logits span about +-0.6, so no
    # training could lower the loss far below chance, ln(49152) = 10.8. A final norm 25x wider lets them move.
    model = _model(real_tokenizer, attention="bidirectional", head_scale=25.0)
    loss = MNTPLoss(model)
    batch = _batch(model)

    def fixed_mask_loss():
        torch.manual_seed(123)  # the same masks before and after training
        with torch.no_grad():
            return loss(batch).loss.item()

    model.eval()
    before = fixed_mask_loss()
    texts = datasets.Dataset.from_dict({"text": SENTENCES * 8})
    args = _args(tmp_path, max_steps=24, learning_rate=1e-2)
    trainer = Text2TokenTrainer(model=model, args=args, train_dataset=texts, loss=loss)
    trainer.train()
    model.eval()
    after = fixed_mask_loss()
    assert after < before - 0.5, (before, after)  # the same masks, before and after
    logged = [log for log in trainer.state.log_history if "mntp" in log]
    assert len(logged) == 24 and all(0 <= log["masked_accuracy"] <= 1 for log in logged)


# ----------------------------------------------------------------------------------------------- registry, trainer
def test_the_registry_names_every_loss(real_tokenizer, tmp_path):
    assert set(LOSSES) == {"token_targets", "simcse", "mntp"}
    model = _model(real_tokenizer, attention="bidirectional")
    args = _args(tmp_path, simcse_attention_dropout=0.2, mntp_probability=0.3)
    assert type(build_loss("token_targets", model, args)) is TokenTargetLoss
    assert build_loss("simcse", model, args).noise.attention_dropout == 0.2
    assert build_loss("mntp", model, args).mask_probability == 0.3
    with pytest.raises(ValueError, match=r"loss='triplet': expected one of \('token_targets', 'simcse', 'mntp'\)"):
        build_loss("triplet", model)


def test_the_removed_objective_key_is_named_as_unknown(tmp_path):
    # `objective:` was a deprecated alias of `loss:`; recipes now name their loss with `loss:` only.
    config = tmp_path / "old.yaml"
    config.write_text("objective: simcse\nsimcse_temperature: 0.05\n")
    with pytest.raises(ValueError, match=r"old.yaml: unknown option\(s\) \['objective'\]"):
        parse_recipe_args((ModelArguments, DataArguments, Text2TokenTrainingArguments),
                          ["--config", str(config), "--output_dir", str(tmp_path / "o"), "--use_cpu", "true"])


def test_the_trainer_logs_the_token_target_loss_components(real_tokenizer, tmp_path):
    model = _model(real_tokenizer)
    targets = build_data_driven_targets(datasets.Dataset.from_dict({"text": SENTENCES * 2}), model.tokenizer)
    trainer = Text2TokenTrainer(model=model, args=_args(tmp_path, max_steps=2, logging_steps=2), train_dataset=targets)
    assert type(trainer.loss) is TokenTargetLoss
    trainer.train()
    log = next(log for log in trainer.state.log_history if "loss" in log)
    assert log["kl"] == pytest.approx(log["loss"], rel=1e-3)


def test_a_loss_of_another_model_is_refused(real_tokenizer, tmp_path):
    model = _model(real_tokenizer)
    texts = datasets.Dataset.from_dict({"text": SENTENCES})
    with pytest.raises(ValueError, match="the SimCSELoss given as loss= holds another model than the trainer's"):
        Text2TokenTrainer(model=model, args=_args(tmp_path), train_dataset=texts,
                          loss=SimCSELoss(_model(real_tokenizer)))


def test_token_targets_on_plain_text_are_refused_by_name(real_tokenizer):
    model = _model(real_tokenizer)
    with pytest.raises(ValueError, match="loss=token_targets needs target_ids and target_weights"):
        TokenTargetLoss(model)(_batch(model))


# ----------------------------------------------------------------------------------------------- hand-computed losses
def test_loss_equals_hand_computed_kl():
    torch.manual_seed(0)
    logits = torch.randn(2, 10)
    ids = torch.tensor([[1, 4, 7], [2, 0, 0]])
    weights = torch.tensor([[0.5, 0.3, 0.2], [1.0, 0.0, 0.0]])
    p = logits.softmax(-1)
    by_hand = ((0.5 * torch.log(0.5 / p[0, 1]) + 0.3 * torch.log(0.3 / p[0, 4]) + 0.2 * torch.log(0.2 / p[0, 7]))
               + torch.log(1.0 / p[1, 2])) / 2
    loss = token_target_kl(logits, ids, weights)
    torch.testing.assert_close(loss, by_hand)
    dense_q = torch.zeros(2, 10).scatter_add_(1, ids, weights)
    torch.testing.assert_close(loss, F.kl_div(logits.log_softmax(-1), dense_q, reduction="batchmean"))


def test_loss_is_zero_when_prediction_matches_target():
    logits = torch.full((1, 5), -1e4)
    logits[0, 3] = 1e4
    assert token_target_kl(logits, torch.tensor([[3]]), torch.tensor([[1.0]])).item() == 0.0


def test_loss_runs_in_fp32_for_half_logits():
    logits = torch.randn(2, 10).to(torch.bfloat16)
    loss = token_target_kl(logits, torch.tensor([[1], [2]]), torch.tensor([[1.0], [1.0]]))
    assert loss.dtype == torch.float32


def test_simcse_loss_is_cross_entropy_over_scaled_cosines():
    from text2token.losses import in_batch_contrastive

    torch.manual_seed(0)
    a, b = torch.randn(3, 8), torch.randn(3, 8)
    sims = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / 0.05
    by_hand = -torch.stack([sims[i].log_softmax(-1)[i] for i in range(3)]).mean()
    torch.testing.assert_close(in_batch_contrastive(a, b, 0.05), by_hand)
    assert in_batch_contrastive(a, a, 0.05).item() < in_batch_contrastive(a, b, 0.05).item()
