import datasets
import numpy as np
import pytest

from text2token.targets import (
    TargetInfo,
    build_data_driven_targets,
    check_tokenizer,
    content_text,
    nltk_english_stopwords,
    load_targets,
    read_info,
    resolve_stopwords,
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
    assert content_text("The fox -- and THE dog!", nltk_english_stopwords()) == "fox dog"


def test_underscores_separate_words_as_in_the_authors_code():
    # `\W+` alone would keep "snake_case" as one word; `[\W_]+` splits it, and "the" then goes.
    assert content_text("snake_case the_fox __init__", nltk_english_stopwords()) == "snake case fox init"


def test_nltk_list_is_the_default_and_differs_from_sklearn_where_the_review_found(real_tokenizer):
    # Content words sklearn's list drops and NLTK's keeps, and fragments NLTK's drops but sklearn's keeps.
    text = "fire system bill interest find name part top side never one twenty s t don having just"
    nltk_kept = set(content_text(text, nltk_english_stopwords()).split())
    assert nltk_kept == {"fire", "system", "bill", "interest", "find", "name", "part", "top", "side", "never",
                         "one", "twenty"}
    by_list = {}
    for stopwords in ("nltk", "sklearn", "none"):
        targets = build_data_driven_targets(_corpus([text]), real_tokenizer, stopwords=stopwords)
        assert read_info(targets).params["stopwords"] == stopwords
        by_list[stopwords] = {real_tokenizer.decode([i]).strip() for i in targets[0]["target_ids"]}
    assert by_list["nltk"] == nltk_kept
    assert by_list["sklearn"] == {"s", "t", "don", "having", "just"}
    assert by_list["none"] == set(text.split())
    default = build_data_driven_targets(_corpus([text]), real_tokenizer)
    assert read_info(default).params["stopwords"] == "nltk"
    with pytest.raises(ValueError, match="stopwords='spacy'"):
        build_data_driven_targets(_corpus([text]), real_tokenizer, stopwords="spacy")


def test_a_stopword_file_is_read_and_recorded_by_its_words_not_its_name(tmp_path, real_tokenizer):
    text = "The cat is not happy, and no dog is"
    words = tmp_path / "negation-kept.txt"
    words.write_text("# NLTK's list less the negations\n" + "\n".join(sorted(nltk_english_stopwords() - {"no", "not"})))
    targets = build_data_driven_targets(_corpus([text]), real_tokenizer, stopwords=words)
    assert {real_tokenizer.decode([i]).strip() for i in targets[0]["target_ids"]} == {"cat", "not", "happy", "no", "dog"}
    name = read_info(targets).params["stopwords"]
    assert name.startswith(f"custom ({len(nltk_english_stopwords()) - 2} words, sha256 ")
    # The same words in another order, case and file, or as a list, get the same name (so the same
    # target spec); one word swapped for another does not.
    shuffled = tmp_path / "other.txt"
    shuffled.write_text(" ".join(w.upper() for w in sorted(nltk_english_stopwords() - {"no", "not"}, reverse=True)))
    assert resolve_stopwords(shuffled)[1] == resolve_stopwords(list(nltk_english_stopwords() - {"no", "not"}))[1] == name
    assert resolve_stopwords(nltk_english_stopwords() - {"no", "nor"})[1] != name
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt: not UTF-8 text"):
        resolve_stopwords(latin1)
    with pytest.raises(ValueError, match="no such file"):
        resolve_stopwords(tmp_path / "missing.txt")


def test_whitespace_and_special_pieces_never_become_targets(real_tokenizer):
    # SmolLM2's tokenizer splits digits one by one and puts the space before them in a lone piece.
    text = "born 1990 in Paris"
    raw = real_tokenizer(content_text(text, nltk_english_stopwords()), add_special_tokens=False)["input_ids"]
    lone = [i for i in raw if not real_tokenizer.decode([i]).strip()]
    assert lone, "the fixture must contain a whitespace-only piece for this test to mean anything"
    special = text + " " + real_tokenizer.eos_token
    targets = build_data_driven_targets(_corpus([text, special]), real_tokenizer)
    for row in targets:
        assert not set(lone) & set(row["target_ids"])
        assert not set(real_tokenizer.all_special_ids) & set(row["target_ids"])
        assert all(real_tokenizer.decode([i]).strip() for i in row["target_ids"])
    assert [real_tokenizer.decode([i]) for i in targets[0]["target_ids"]][:2] == ["born", "1"]


def test_target_tokens_are_truncated_at_the_training_length(real_tokenizer):
    words = " ".join(f"word{i}" for i in range(200))
    full = build_data_driven_targets(_corpus([words]), real_tokenizer)
    cut = build_data_driven_targets(_corpus([words]), real_tokenizer, max_length=16)
    first16 = real_tokenizer(words, add_special_tokens=False)["input_ids"][:16]
    assert cut[0]["target_ids"] == list(dict.fromkeys(first16))
    assert len(full[0]["target_ids"]) > len(cut[0]["target_ids"])
    assert read_info(cut).params["max_length"] == 16


def test_data_driven_targets_follow_the_paper(real_tokenizer):
    targets = build_data_driven_targets(_corpus(), real_tokenizer)
    assert targets.features["target_ids"].feature.dtype == "int32"
    assert targets.features["target_weights"].feature.dtype == "float32"
    assert len(targets) == 3, "the stopword-only text must be dropped"
    first = targets[0]
    expected = list(dict.fromkeys(real_tokenizer(content_text(TEXTS[0], nltk_english_stopwords()),
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
