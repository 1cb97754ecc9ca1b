import datasets
import numpy as np
import pytest

from text2token.targets import (
    TargetInfo,
    build_data_driven_targets,
    check_tokenizer,
    content_text,
    english_stopwords,
    load_targets,
    read_info,
    save_targets,
    tokenizer_fingerprint,
)

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Photosynthesis converts light energy into chemical energy; plants store it as sugar.",
    "the of and , !!",  # stopwords and punctuation only: an empty target
    "fox fox fox",
]


def _corpus(texts=TEXTS, column="text"):
    return datasets.Dataset.from_dict({column: texts})


def test_content_text_drops_stopwords_and_non_word_characters():
    assert content_text("The fox -- and THE dog!", english_stopwords()) == "fox dog"


def test_data_driven_targets_follow_the_paper(real_tokenizer):
    targets = build_data_driven_targets(_corpus(), real_tokenizer)
    assert targets.features["target_ids"].feature.dtype == "int32"
    assert targets.features["target_weights"].feature.dtype == "float32"
    assert len(targets) == 3, "the stopword-only text must be dropped"
    first = targets[0]
    expected = list(dict.fromkeys(real_tokenizer(content_text(TEXTS[0], english_stopwords()),
                                                 add_special_tokens=False)["input_ids"]))
    assert first["target_ids"] == expected
    np.testing.assert_allclose(first["target_weights"], 1 / len(expected), rtol=1e-6)
    fox = targets[2]
    assert len(fox["target_ids"]) == len(set(fox["target_ids"])), "ids must be unique"
    for row in targets:
        assert abs(sum(row["target_weights"]) - 1) < 1e-5


def test_empty_targets_are_counted_in_the_metadata(real_tokenizer, caplog):
    targets = build_data_driven_targets(_corpus(), real_tokenizer, corpus="toy")
    info = read_info(targets)
    assert info.dropped == {"empty_target": 1}
    assert info.method == "data" and info.corpus == "toy" and info.num_rows == 3
    assert info.tokenizer_fingerprint == tokenizer_fingerprint(real_tokenizer)
    assert info.params["weighting"] == "uniform"
    assert "1 of 4 texts have no content tokens" in caplog.text
    assert targets["source_row"] == [0, 1, 3]


def test_idf_weighting_favours_rare_tokens_and_top_k_caps(real_tokenizer):
    texts = ["energy plants sugar", "energy light", "energy water", "energy"]
    targets = build_data_driven_targets(_corpus(texts), real_tokenizer, weighting="idf", top_k=2)
    row = targets[0]
    assert len(row["target_ids"]) == 2
    energy = real_tokenizer("energy", add_special_tokens=False)["input_ids"][0]
    assert energy not in row["target_ids"], "the token in every document must rank below rarer ones"
    assert abs(sum(row["target_weights"]) - 1) < 1e-5


def test_missing_text_column_names_the_columns(real_tokenizer):
    with pytest.raises(ValueError, match=r"no text column 'text'.*\['sentence'\]"):
        build_data_driven_targets(_corpus(column="sentence"), real_tokenizer)
    targets = build_data_driven_targets(_corpus(column="sentence"), real_tokenizer, text_column="sentence")
    assert "text" in targets.column_names


def test_non_string_rows_are_named(real_tokenizer):
    with pytest.raises(TypeError, match="row 1: field 'text' is NoneType, expected a string"):
        build_data_driven_targets(_corpus(texts=["fine text", None]), real_tokenizer)


def test_empty_dataset_is_refused(real_tokenizer):
    with pytest.raises(ValueError, match="empty"):
        build_data_driven_targets(_corpus(texts=[]), real_tokenizer)


def test_save_and_load_keep_rows_and_metadata(real_tokenizer, tmp_path):
    targets = build_data_driven_targets(_corpus(), real_tokenizer)
    save_targets(targets, tmp_path / "t")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging folder may be left"
    loaded = load_targets(tmp_path / "t")
    assert loaded.to_dict() == targets.to_dict()
    assert read_info(loaded) == read_info(targets)


def test_mismatched_tokenizer_is_refused_naming_both(real_tokenizer):
    info = TargetInfo(method="data", params={}, backbone="other/model", tokenizer_fingerprint="0123456789abcdef",
                      vocab_size=10, corpus="c", corpus_fingerprint="")
    with pytest.raises(ValueError, match=f"0123456789abcdef.*{tokenizer_fingerprint(real_tokenizer)}"):
        check_tokenizer(info, real_tokenizer)
