"""Unusual inputs each get a defined result or a clear error, never a NaN similarity downstream."""

import datasets
import numpy as np
import pyarrow as pa
import pytest

import text2token
from text2token.collator import Text2TokenCollator
from text2token.targets.schema import validate_targets


def _cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_empty_and_whitespace_texts_get_one_finite_vector(tiny_model, pooling, caplog):
    tiny_model.config.pooling = pooling
    tiny_model.config.prompt = text2token.PROMPT_EOL if pooling == "last" else None
    vectors = tiny_model.encode(["", " \t\n ", "a boat on the river"])
    assert np.isfinite(vectors).all() and (np.linalg.norm(vectors, axis=1) > 0).all()
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    assert np.isfinite(_cosine(vectors[0], vectors[2]))
    assert "2 empty or whitespace-only text(s) (texts[0, 1])" in caplog.text
    alone = tiny_model.encode([""])  # a batch of nothing but empty text
    np.testing.assert_allclose(alone[0], vectors[0], atol=1e-5)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, "8"])
def test_a_bad_batch_size_is_named(tiny_model, batch_size):
    with pytest.raises(ValueError, match=f"batch_size={batch_size!r}: must be a positive integer"):
        tiny_model.encode(["some text"], batch_size=batch_size)


@pytest.mark.parametrize("text", ["日本語のテキスト" * 40, "😀🎉" * 100, "Ωmega éclair " * 40, "한국어 문장" * 50])
@pytest.mark.parametrize("max_length", [17, 24, 31])
def test_multibyte_text_at_the_limit_keeps_the_prompt_end_and_invents_nothing(tiny_model, text, max_length):
    prompt = text2token.PROMPT_EOL
    suffix = prompt.split("{text}")[1]
    ids = text2token.tokenization.tokenize_texts(tiny_model.tokenizer, [text], max_length=max_length,
                                                 prompt=prompt)["input_ids"][0].tolist()
    assert len(ids) <= max_length
    decoded = tiny_model.tokenizer.decode(ids, skip_special_tokens=True)
    assert decoded.endswith(suffix), "last pooling reads the prompt's end: truncation must not cut it"
    kept = decoded[len(prompt.split("{text}")[0]):-len(suffix)]
    assert text.startswith(kept), f"the kept text {kept[-12:]!r} is not a prefix of the input (U+FFFD invented?)"


def _rows(ids, weights, ids_type=pa.list_(pa.int32()), weights_type=pa.list_(pa.float32())):
    table = pa.table({"text": pa.array(["t"] * len(ids)), "target_ids": pa.array(ids, ids_type),
                      "target_weights": pa.array(weights, weights_type)})
    return datasets.Dataset(table)


@pytest.mark.parametrize("dataset, message", [
    (_rows([[1, 2], [3, None]], [[0.5, 0.5], [0.5, 0.5]]), "row 1: target_ids holds a null element"),
    (_rows([[1, 2], [3, 4], [5]], [[0.5, 0.5], [0.5, 0.5], [None]]), "row 2: target_weights holds a null element"),
    (_rows([["1", "2"]], [[0.5, 0.5]], ids_type=pa.list_(pa.string())),
     r"column target_ids must be a list of integer token ids, found list<item: string>"),
    (_rows([[1.0, 2.5]], [[0.5, 0.5]], ids_type=pa.list_(pa.float64())),
     r"column target_ids must be a list of integer token ids, found list<item: double>"),
    (_rows([[1, 2]], [["0.5", "0.5"]], weights_type=pa.list_(pa.string())),
     r"column target_weights must be a list of numbers, found list<item: string>"),
])
def test_bad_target_element_types_are_named(dataset, message):
    with pytest.raises(ValueError, match=message):
        validate_targets(dataset, vocab_size=50, source="targets")


def test_the_collator_names_a_row_it_cannot_batch(real_tokenizer):
    collate = Text2TokenCollator(real_tokenizer, max_length=16)
    good = {"text": "fine", "target_ids": [1, 2], "target_weights": [0.5, 0.5]}
    bad = {"text": "broken row", "target_ids": [1, None], "target_weights": [0.5, 0.5]}
    with pytest.raises(ValueError, match=r"batch row 1 \('broken row'\): target_ids and target_weights must be"):
        collate([good, bad])
