"""Bad input and crashes: clear errors that name the row, field or file; nothing half-written."""

import datasets
import numpy as np
import pytest
import torch

from text2token.arguments import Text2TokenTrainingArguments
from text2token.checkpointing import NonFiniteLossError, last_complete_checkpoint
from text2token.targets import build_data_driven_targets
from text2token.targets.schema import target_features, validate_targets
from text2token.trainer import Text2TokenTrainer

from model_fixtures import SENTENCES


def _targets(rows):
    return datasets.Dataset.from_dict({"text": ["t"] * len(rows), "target_ids": [r[0] for r in rows],
                                       "target_weights": [r[1] for r in rows]}, features=target_features())


GOOD = ([1, 2], [0.5, 0.5])


@pytest.mark.parametrize("bad, message", [
    (([1, 99], [0.5, 0.5]), "row 1: target_ids holds an id outside the vocabulary"),
    (([-1, 2], [0.5, 0.5]), "row 1: target_ids holds an id outside the vocabulary"),
    (([1, 2], [float("nan"), 0.5]), "row 1: target_weights holds NaN or infinity"),
    (([1, 2], [1.5, -0.5]), "row 1: target_weights holds a negative weight"),
    (([1, 2], [0.5, 0.2]), "row 1: target_weights do not sum to 1"),
    (([1, 2, 3], [0.5, 0.5]), "row 1: target_ids and target_weights have different lengths"),
    (([4, 4], [0.5, 0.5]), "row 1: target_ids holds a duplicate id"),
    (([], []), "row 1: empty target"),
])
def test_bad_target_rows_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        validate_targets(_targets([GOOD, bad]), vocab_size=50)


def test_trainer_refuses_bad_targets_before_any_step(tiny_model, tmp_path):
    args = Text2TokenTrainingArguments(output_dir=str(tmp_path), max_steps=1, report_to="none", use_cpu=True,
                                       allow_unverified_targets=True)
    bad = _targets([GOOD, ([1, 10**6], [0.5, 0.5])])
    with pytest.raises(ValueError, match="train_dataset: row 1: target_ids holds an id outside"):
        Text2TokenTrainer(model=tiny_model, args=args, train_dataset=bad)


def _training(tiny_model, tmp_path, **overrides):
    corpus = datasets.Dataset.from_dict({"text": SENTENCES * 4})
    values = dict(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=4, learning_rate=1e-3,
                  logging_steps=1, save_steps=2, report_to="none", use_cpu=True)
    values.update(overrides)
    return Text2TokenTrainer(model=tiny_model, args=Text2TokenTrainingArguments(**values),
                             train_dataset=build_data_driven_targets(corpus, tiny_model.tokenizer))


def test_checkpoints_appear_only_when_complete(tiny_model, tmp_path, monkeypatch):
    trainer = _training(tiny_model, tmp_path)
    calls = []
    real = trainer._save_rng_state

    def crash_on_second_save(output_dir):
        calls.append(output_dir)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash while saving")
        real(output_dir)

    monkeypatch.setattr(trainer, "_save_rng_state", crash_on_second_save)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"], "checkpoint-4 is half-written"
    assert last_complete_checkpoint(out).endswith("checkpoint-2")


def test_a_checkpoint_missing_a_file_is_named(tmp_path):
    folder = tmp_path / "checkpoint-7"
    folder.mkdir()
    (folder / "trainer_state.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"checkpoint-7 is missing \['model.safetensors'\]"):
        last_complete_checkpoint(tmp_path)


def test_non_finite_loss_stops_with_step_and_batch_after_saving(tiny_model, tmp_path, monkeypatch):
    trainer = _training(tiny_model, tmp_path, save_steps=100)
    real_forward, calls = tiny_model.forward, []

    def nan_on_third_call(*args, **kwargs):
        out = real_forward(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:  # the loss module computes the KL from these logits
            out.logits = out.logits * float("nan")
        return out

    monkeypatch.setattr(tiny_model, "forward", nan_on_third_call)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 3 \(batch of 4 texts, starting with"):
        trainer.train()
    saved = tmp_path / "out" / "checkpoint-2"
    assert (saved / "model.safetensors").is_file() and (saved / "trainer_state.json").is_file()


def test_corpus_text_file_with_invalid_utf8_names_file_and_line(tmp_path):
    from text2token.corpora import load_corpus

    path = tmp_path / "corpus.txt"
    path.write_bytes(b"fine line\nanother\nbroken \xff\xfe line\n")
    with pytest.raises(ValueError, match=r"corpus.txt:3: not valid UTF-8"):
        load_corpus(str(path))


def test_corrupt_parquet_is_named(tmp_path):
    from text2token.corpora import load_corpus

    path = tmp_path / "corpus.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ValueError, match="corpus.parquet"):
        load_corpus(str(path))


def test_encode_handles_unusual_but_valid_text(tiny_model):
    texts = ["😀 emoji only", "中文文本的句子", "שלום עולם", "x" * 100_000, "mixed 😀 中文 text"]
    out = tiny_model.encode(texts)
    assert out.shape == (5, tiny_model.config.lm_config.hidden_size) and np.isfinite(out).all()


def test_encode_replaces_lone_surrogates_with_a_warning(tiny_model, caplog):
    out = tiny_model.encode(["bad \ud800 surrogate", "fine"])
    assert np.isfinite(out).all()
    assert "texts[0]" in caplog.text and "surrogate" in caplog.text
    np.testing.assert_allclose(out[0], tiny_model.encode(["bad \ufffd surrogate"])[0], atol=1e-6)


def test_truncated_target_dataset_is_named(real_tokenizer, tmp_path):
    from text2token.targets import load_targets, save_targets

    targets = build_data_driven_targets(datasets.Dataset.from_dict({"text": SENTENCES}), real_tokenizer)
    folder = save_targets(targets, tmp_path / "targets")
    arrow = next(folder.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"targets: cannot be read as a dataset"):
        load_targets(folder)[0]


def test_a_crash_during_the_final_save_leaves_no_loadable_half_model(tiny_model, tmp_path, monkeypatch):
    trainer = _training(tiny_model, tmp_path, max_steps=2, save_steps=100)
    trainer.train()
    out = tmp_path / "out"
    monkeypatch.setattr(trainer, "_write_model_card", lambda folder: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        trainer.save_model()
    assert not (out / "config.json").exists() and not (out / "model.safetensors").exists()
    monkeypatch.undo()
    trainer.save_model()  # the rerun publishes a whole model
    assert (out / "config.json").is_file() and not (out / ".final-staging").exists()


def test_hub_tokens_stay_out_of_logs_and_cards(loopback_hub, real_tokenizer, tmp_path, caplog):
    import logging

    from huggingface_hub import DatasetCard

    from text2token.hub import push_targets_to_hub

    secret = "hf_doNotLeakThisToken0123456789"
    caplog.set_level(logging.DEBUG)
    targets = build_data_driven_targets(datasets.Dataset.from_dict({"text": SENTENCES}), real_tokenizer)
    push_targets_to_hub(targets, "tester/token-check", token=secret)
    card = DatasetCard.load("tester/token-check", repo_type="dataset").content
    assert secret not in caplog.text and secret not in card
