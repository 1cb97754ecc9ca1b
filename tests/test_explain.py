import copy

import pytest
import torch

from text2token.cli import main as cli
from text2token.configuration import PROMPT_EOL
from text2token.explain import compare, explain, in_text_flags, load_pair, render, render_comparison

from model_fixtures import SENTENCES, tiny_backbone

TEXT = "The cat sat on the mat."


def single_id(tokenizer, piece: str) -> int:
    ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1, f"{piece!r} is not one token: {ids}"
    return ids[0]


def pin_logits(model, rows: list[dict[int, float]]) -> None:
    """Replace the LM-head read-out so row r of a call puts `rows[r]`'s logits on those ids."""
    logits = torch.full((len(rows), model.lm_head.weight.shape[0]), -30.0)
    for r, row in enumerate(rows):
        for token_id, value in row.items():
            logits[r, token_id] = value
    model.project = lambda h: logits[: len(h)].clone()


def test_marks_tokens_found_in_the_text_by_id_or_by_word(tiny_model):
    tok = tiny_model.tokenizer
    cat, dog, cat_cap, period, animal = (single_id(tok, p) for p in (" cat", " dog", "Cat", ".", " animal"))
    own = set(tok(TEXT, add_special_tokens=False)["input_ids"])
    assert cat in own and period in own and cat_cap not in own, "the case needs a word match with another id"
    pin_logits(tiny_model, [{cat: 9.0, dog: 8.0, cat_cap: 7.0, period: 6.0, animal: 5.0}])

    [explanation] = explain(tiny_model, [TEXT], k=5)

    assert [t.token_id for t in explanation.tokens] == [cat, dog, cat_cap, period, animal]
    assert [t.in_text for t in explanation.tokens] == [True, False, True, True, False]
    assert [t.token for t in explanation.derived] == [" dog", " animal"]
    probs = torch.tensor([9.0, 8.0, 7.0, 6.0, 5.0]).softmax(-1)  # the other ids hold ~1e-13 of the mass
    assert explanation.in_text_mass == pytest.approx(float(probs[[0, 2, 3]].sum()), rel=1e-4)
    assert explanation.derived_mass == pytest.approx(float(probs[[1, 4]].sum()), rel=1e-4)
    text = render([explanation])
    assert TEXT in text and "* ' cat'" in text and "  ' dog'" in text and "in text 3/5" in text


def test_explain_agrees_with_the_model_and_with_the_marking_rule(tiny_model):
    explained = explain(tiny_model, SENTENCES, k=6)
    for explanation, expected in zip(explained, tiny_model.explain(SENTENCES, k=6)):
        assert [t.token for t in explanation.tokens] == [token for token, _ in expected]
        assert [t.prob for t in explanation.tokens] == pytest.approx([p for _, p in expected], rel=1e-5)
        flags = in_text_flags(tiny_model.tokenizer, explanation.text, [t.token_id for t in explanation.tokens])
        assert [t.in_text for t in explanation.tokens] == flags
    assert tiny_model.training is False


def test_compare_renders_two_models_side_by_side(tiny_model):
    trained = copy.deepcopy(tiny_model)
    dog = single_id(tiny_model.tokenizer, " dog")
    pin_logits(trained, [{dog: 20.0}])
    pairs = compare(tiny_model, trained, [TEXT], k=3)
    before_top = pairs[0][0].tokens[0].token

    out = render_comparison(pairs, names=("untrained", "trained")).splitlines()

    header = next(line for line in out if "untrained" in line)
    assert header.index("untrained") < header.index("| trained")
    row1 = next(line for line in out if line.lstrip().startswith("1 "))
    left, right = row1.split(" | ")
    assert repr(before_top) in left and "' dog'" in right and right.strip().endswith("1.0000")
    assert sum(1 for line in out if " | " in line) == 1 + 3 + 1  # header, k ranks, summary


def test_cli_compare_wraps_a_plain_backbone_with_the_other_models_pooling(tiny_model, real_tokenizer, tmp_path,
                                                                         capsys):
    backbone_dir = tmp_path / "backbone"
    tiny_backbone(len(real_tokenizer), real_tokenizer.pad_token_id).save_pretrained(backbone_dir)
    real_tokenizer.save_pretrained(backbone_dir)
    tiny_model.config.pooling, tiny_model.config.prompt = "last", PROMPT_EOL
    tiny_model.save_pretrained(tmp_path / "model")

    plain, trained = load_pair(str(backbone_dir), str(tmp_path / "model"))
    assert (plain.config.pooling, plain.config.prompt) == ("last", PROMPT_EOL)
    assert trained.config.lora is not None, "the Text2Token model loads as saved"

    cli(["explain", str(backbone_dir), TEXT, "--compare", str(tmp_path / "model"), "-k", "4"])
    out = capsys.readouterr().out
    assert TEXT in out and f"{backbone_dir}" in out and f"| {tmp_path / 'model'}" in out
    assert sum(1 for line in out.splitlines() if line.lstrip()[:2] in {"1 ", "2 ", "3 ", "4 "} and " | " in line) == 4
