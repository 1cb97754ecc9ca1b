import json

import pandas as pd
import pytest

from text2token.evaluation.spread import (borrow_spread, inside_spread, pool_seeds, seed_label, system_of,
                                          write_spread)


def _table():
    rows = {
        seed_label("t2t", 1): {"TaskA": 60.0, "avg STS": 60.0, "Average": 60.0, "train_wall_s": 10.0},
        seed_label("t2t", 2): {"TaskA": 62.0, "avg STS": 62.0, "Average": 62.0, "train_wall_s": 12.0},
        seed_label("simcse", 1): {"TaskA": 57.0, "avg STS": 57.0, "Average": 57.0, "train_wall_s": 20.0},
        seed_label("simcse", 2): {"TaskA": 59.0, "avg STS": 59.0, "Average": 59.0, "train_wall_s": 22.0},
        "tfidf": {"TaskA": 61.5, "avg STS": 61.5, "Average": 61.5, "train_wall_s": 0.0},
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "system"
    return table


def test_labels_round_trip():
    assert system_of(seed_label("text2token-stage2", 43)) == "text2token-stage2"
    assert system_of("tfidf") == "tfidf"


def test_seeds_pool_into_mean_and_sample_std():
    mean, std, runs = pool_seeds(_table())
    assert list(mean.index) == ["t2t", "simcse", "tfidf"]
    assert mean.loc["t2t", "Average"] == 61.0 and std.loc["t2t", "Average"] == pytest.approx(2 ** 0.5)
    assert std.loc["tfidf", "Average"] == 0.0 and runs.to_dict() == {"t2t": 2, "simcse": 2, "tfidf": 1}
    assert "train_wall_s" not in mean.columns  # only scores are pooled


def test_differences_inside_the_summed_spread_are_marked():
    mean, std, _ = pool_seeds(_table())
    marks = inside_spread(mean, std, "t2t")
    # tfidf: |61.5 - 61| = 0.5 <= 1.41 + 0; simcse: 3 > 1.41 + 1.41 = 2.83; the reference is never marked.
    assert marks.loc["tfidf", "Average"] and not marks.loc["simcse", "Average"] and not marks.loc["t2t", "Average"]
    with pytest.raises(KeyError, match="reference system 'nope' is not in the table"):
        inside_spread(mean, std, "nope")


def test_written_files_carry_the_pooled_table(tmp_path):
    out = write_spread(_table(), tmp_path, "t2t")
    markdown = (tmp_path / "seeds.md").read_text()
    assert "| **t2t** | 61.00 ± 1.41 | 61.00 ± 1.41 | 61.00 ± 1.41 | 2 | 11.00 |" in markdown
    assert "| tfidf | 61.50 ≈ | 61.50 ≈ | 61.50 ≈ | 1 | 0.00 |" in markdown
    record = json.loads((tmp_path / "seeds.json").read_text())
    assert record["systems"]["tfidf"]["inside_spread_of_reference"] == ["TaskA", "avg STS", "Average"]
    assert record["systems"]["simcse"]["std"]["Average"] == pytest.approx(2 ** 0.5, abs=1e-4)
    assert (tmp_path / "seeds.png").stat().st_size > 1000 and out["runs"]["simcse"] == 2


def test_one_seed_borrows_the_spread_of_a_several_seed_run(tmp_path):
    write_spread(_table(), tmp_path / "quick", "t2t")  # the several-seed run: t2t and simcse have std 1.41
    single = _table().drop([seed_label("t2t", 2), seed_label("simcse", 2)])  # one seed of each, full suite
    single.loc[seed_label("simcse", 1), ["TaskA", "avg STS", "Average"]] = 58.0

    mean, std, runs = pool_seeds(single)
    borrowed_std, borrowed = borrow_spread(std, runs, tmp_path / "quick" / "seeds.json")
    assert borrowed == ["t2t", "simcse"]  # tfidf had one run there too: nothing to borrow
    assert borrowed_std.loc["simcse", "Average"] == pytest.approx(2 ** 0.5, abs=1e-4)
    assert borrowed_std.loc["tfidf", "Average"] == 0.0 and std.loc["t2t", "Average"] == 0.0  # the input is kept

    out = write_spread(single, tmp_path / "full", "t2t", spread_from=tmp_path / "quick" / "seeds.json")
    markdown = (tmp_path / "full" / "seeds.md").read_text()
    # |58 - 60| = 2 <= 1.41 + 1.41: inside the borrowed spread, where one seed alone would not say so.
    assert "| simcse | 58.00 ± 1.41† ≈ |" in markdown and "| **t2t** | 60.00 ± 1.41† |" in markdown
    assert "| tfidf | 61.50 |" in markdown and "†: one seed scored here" in markdown  # 1.5 > 1.41 + 0
    record = json.loads((tmp_path / "full" / "seeds.json").read_text())
    assert record["systems"]["simcse"]["seeds"] == 1 and "std_borrowed_from" in record["systems"]["simcse"]
    assert "std_borrowed_from" not in record["systems"]["tfidf"] and out["borrowed"] == ["t2t", "simcse"]


def test_a_file_that_is_no_seeds_json_is_named(tmp_path):
    mean, std, runs = pool_seeds(_table())
    bad = tmp_path / "summary.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="summary.json: not a seeds.json"):
        borrow_spread(std, runs, bad)
