import datasets
import pytest
from transformers import TrainerControl, TrainerState

from text2token.alignment import (AlignmentCallback, alignment_scores, compute_alignment, content_token_sets,
                                  hold_out)
from text2token.arguments import Text2TokenTrainingArguments
from text2token.targets import build_data_driven_targets, read_info
from text2token.trainer import Text2TokenTrainer

from model_fixtures import SENTENCES
from test_explain import pin_logits


def test_metrics_match_a_hand_computed_example():
    ranked = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [1, 2, 3, 4]]
    targets = [{1, 3}, {5, 6, 99}, {42}, set()]
    scores = alignment_scores(ranked, targets, k=2)
    # text 1: top-2 {1,2} hits; top-|T|=2 {1,2} ∩ {1,3} = 1 of 2
    # text 2: top-2 {5,6} hits; top-3 {5,6,7} ∩ T = 2 of 3
    # text 3: no hit; top-1 {9} ∩ {42} = 0 of 1; text 4: no content tokens, skipped
    assert scores.hit_at_k == pytest.approx(2 / 3)
    assert scores.local_alignment == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert scores.global_alignment == pytest.approx((1 + 2 + 0) / (2 + 3 + 1))
    assert (scores.num_texts, scores.num_skipped) == (3, 1)
    assert scores.to_logs() == {"align_hit@2": scores.hit_at_k, "align_local": scores.local_alignment,
                                "align_global": scores.global_alignment}
    with pytest.raises(ValueError, match="row 0"):
        alignment_scores([[1]], [{1, 2}], k=1)  # too few ranked tokens to score top-|T|


def test_content_tokens_are_the_data_driven_targets(real_tokenizer):
    [cat] = content_token_sets(real_tokenizer, ["The cat sat on the mat."])
    assert cat == frozenset(real_tokenizer("cat sat mat", add_special_tokens=False)["input_ids"])
    targets = build_data_driven_targets(datasets.Dataset.from_dict({"text": ["The cat sat on the mat."]}),
                                        real_tokenizer)
    assert cat == frozenset(targets[0]["target_ids"])


def test_model_whose_top_tokens_are_the_text_scores_one(tiny_model):
    texts = ["The cat sat on the mat.", "Photosynthesis converts light energy."]
    cat_set, photo_set = content_token_sets(tiny_model.tokenizer, texts)
    derived = [i for i in range(1000, 1100) if i not in photo_set][: len(photo_set) + 10]
    # text 1's top tokens are exactly its content tokens; text 2's are none of them
    pin_logits(tiny_model, [{i: 10.0 for i in cat_set}, {i: 10.0 for i in derived}])
    scores = compute_alignment(tiny_model, texts, k=10)
    assert scores.hit_at_k == 0.5 and scores.local_alignment == 0.5
    assert scores.global_alignment == pytest.approx(len(cat_set) / (len(cat_set) + len(photo_set)))


def test_callback_restores_train_mode_and_asks_for_a_log(tiny_model):
    callback = AlignmentCallback(SENTENCES, every_n_steps=3)
    tiny_model.train()
    state, control = TrainerState(), TrainerControl()
    state.global_step = 2
    callback.on_step_end(None, state, control, model=tiny_model)
    assert not control.should_log and callback._pending is None, "not a measuring step"
    state.global_step = 3
    callback.on_step_end(None, state, control, model=tiny_model)
    assert tiny_model.training, "train mode must be restored"
    assert control.should_log and callback._pending[0] == 3


def test_callback_logs_beside_the_loss_and_plots(tiny_model, tmp_path):
    corpus = datasets.Dataset.from_dict({"text": [f"{s} ({i})" for i, s in enumerate(SENTENCES * 5)]})
    targets = build_data_driven_targets(corpus, tiny_model.tokenizer)
    train, held_out = hold_out(targets, n=6, seed=0)
    assert len(train) == len(targets) - 6 and not set(held_out) & set(train["text"])
    assert read_info(train) == read_info(targets), "the split keeps the target metadata"

    plot = tmp_path / "alignment.png"
    args = Text2TokenTrainingArguments(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=4,
                                       learning_rate=5e-3, logging_steps=100, save_strategy="no", report_to="none",
                                       use_cpu=True, seed=0, disable_tqdm=True)
    trainer = Text2TokenTrainer(model=tiny_model, args=args, train_dataset=train,
                                callbacks=[AlignmentCallback(held_out, every_n_steps=1, k=5, plot_path=plot)])
    trainer.train()

    measured = {e["step"]: e for e in trainer.state.log_history if "align_local" in e}
    assert sorted(measured) == [0, 1, 2]
    for step in (1, 2):  # logged at the step itself, in the same entry as the KL loss
        assert "loss" in measured[step] and {"align_hit@5", "align_global"} <= set(measured[step])
        assert 0.0 <= measured[step]["align_local"] <= 1.0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000
