import json

from text2token.evaluation.systems import load_system, weights_digest

from model_fixtures import load_recipe_script



def test_system_names_follow_the_weights(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "a")
    first = load_system(str(tmp_path / "a"))
    tiny_model.merge_lora()
    with __import__("torch").no_grad():
        tiny_model.backbone.get_decoder().norm.weight.mul_(1.5)
    tiny_model.save_pretrained(tmp_path / "a")
    second = load_system(str(tmp_path / "a"))
    assert first.name != second.name, "changed weights must not reuse cached embeddings"
    assert weights_digest(tmp_path / "a") in second.name


def test_evaluate_recipe_prints_and_writes_the_table(tiny_model, tmp_path, capsys):
    tiny_model.save_pretrained(tmp_path / "model")
    evaluate = load_recipe_script("evaluate")
    argv = ["--model", str(tmp_path / "model"), "--label", "tiny", "--baselines", "tfidf", "--quick", "8",
            "--tasks", "OfflineLeeSTS", "OfflineKjvWebBitextMining",
            "--output_dir", str(tmp_path / "eval"), "--cache_dir", str(tmp_path / "cache"),
            "--extras", '{"tiny": {"train_wall_s": 12.5}}']
    table = evaluate.main(argv)
    assert set(table.index) == {"tiny", "tfidf"}
    assert {"OfflineLeeSTS", "OfflineKjvWebBitextMining", "Average", "train_wall_s"} <= set(table.columns)
    assert table.loc["tiny", "train_wall_s"] == 12.5
    out = capsys.readouterr().out
    assert "| tiny |" in out and "| tfidf |" in out
    written = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert set(written) == {"tiny", "tfidf"} and (tmp_path / "eval" / "summary.png").stat().st_size > 1000
