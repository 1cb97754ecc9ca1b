"""The model card a run writes is Hub-ready: parsed back with huggingface_hub, each field checked (issue 23)."""

import re

import datasets
import pandas as pd
import pytest
from huggingface_hub import ModelCard

from text2token.backbones import EMBEDDED_DEFAULT, EMBEDDED_HUB_ID
from text2token.commands.pipeline import card_scores
from text2token.hub import render_model_card, update_model_card_scores
from text2token.targets import build_data_driven_targets, read_info

from model_fixtures import SENTENCES

# A closing table as the pipeline's evaluate step returns it (scores x100): classification drops.
TABLE = pd.DataFrame.from_dict({
    "text2token-stage2": {"OfflineLeeSTS": 62.46, "OfflineRottenTomatoesClassification": 63.65, "Average": 63.0},
    "untrained": {"OfflineLeeSTS": 59.93, "OfflineRottenTomatoesClassification": 69.45, "Average": 64.7},
}, orient="index")


def _targets(tokenizer):
    data = datasets.Dataset.from_dict({"text": SENTENCES * 3})
    return read_info(build_data_driven_targets(data, tokenizer, corpus="wordnet-glosses", backbone=EMBEDDED_DEFAULT))


@pytest.fixture
def two_stages(tiny_model, real_tokenizer, tmp_path, monkeypatch):
    """Stage 1 saved with its card (trained from the embedded default), then stage 2's card rendered as the
    trainer writes it (started from the stage-1 folder) and completed with the pipeline's scores."""
    monkeypatch.chdir(tmp_path)  # the project root of this run: output folders are relative to it
    stage1, stage2 = tmp_path / "outputs" / "run" / "stage1", tmp_path / "outputs" / "run" / "stage2"
    tiny_model.save_pretrained(stage1, merge_lora=True)
    render_model_card(tiny_model, base_model=EMBEDDED_DEFAULT, targets=_targets(real_tokenizer),
                      output_dir="outputs/run/stage1").save(str(stage1 / "README.md"))
    tiny_model.save_pretrained(stage2, merge_lora=True)
    render_model_card(tiny_model, repo_id="stage2", base_model=str(stage1), targets=_targets(real_tokenizer),
                      output_dir="outputs/run/stage2").save(str(stage2 / "README.md"))
    update_model_card_scores(stage2, card_scores(TABLE, quick=100))
    return stage1, stage2


def test_stage2_card_is_hub_ready(two_stages):
    _, stage2 = two_stages
    card = ModelCard.load(stage2 / "README.md")
    data = card.data
    assert data.license == "apache-2.0"  # SmolLM2's, through stage 1's card
    assert data.base_model == EMBEDDED_HUB_ID  # the original backbone, not "stage1@weights:..."
    assert "@weights:" not in str(data.to_dict())
    assert re.search(r"started from the\s+Text2Token model `stage1@weights:[0-9a-f]{12}`", card.text)
    assert data.datasets == ["wordnet-glosses"]
    assert data.library_name == "sentence-transformers" and data.pipeline_tag == "sentence-similarity"

    results = {r.dataset_name: r for r in data.eval_results}
    assert set(results) == {"OfflineLeeSTS", "OfflineRottenTomatoesClassification"}
    sts = results["OfflineLeeSTS"]
    assert (sts.task_name, sts.metric_type, sts.metric_value, sts.dataset_config) == \
        ("STS", "cosine_pearson", 62.46, "quick-100")
    assert results["OfflineRottenTomatoesClassification"].metric_type == "accuracy"
    assert "No evaluation results" not in card.text

    evaluation = card.text.split("## Evaluation")[1].split("## Intended use")[0]
    assert "| OfflineLeeSTS | STS | cosine_pearson | quick-100 | 62.46 | 59.93 |" in evaluation
    limitations = card.text.split("## Limitations")[1].split("## Usage")[0]
    assert "63.65 against the untrained backbone's 69.45, a drop of 5.80" in limitations  # measured, not typed
    assert "OfflineLeeSTS" not in limitations  # no drop there
    assert "English" in limitations and "up to 48 tokens" in limitations
    assert "## Intended use" in card.text
    citation = card.text.split("## Citation")[1]
    assert "eprint        = {2510.10224}" in citation and "@software{text2token" in citation
    versions = card.text.split("## Framework versions")[1].split("## Citation")[0]
    import transformers

    assert f"- transformers: {transformers.__version__}" in versions and "- torch: " in versions


def test_stage2_card_usage_runs_from_the_project_root(two_stages):
    _, stage2 = two_stages
    text = ModelCard.load(stage2 / "README.md").text
    assert '"stage2"' not in text  # a bare name would be read as a Hub id
    snippet = re.search(r"```python\n(import text2token.*?)```", text, re.S).group(1)
    assert 'AutoModel.from_pretrained("./outputs/run/stage2")' in snippet
    scope = {}
    exec(compile(snippet, "card-snippet", "exec"), scope)  # cwd is the run's project root (fixture)
    assert scope["embeddings"].shape == (2, 32)


def test_card_scores_come_from_the_closing_table():
    rows = {row["task"]: row for row in card_scores(TABLE, quick=None)}
    assert rows["OfflineRottenTomatoesClassification"] == {
        "task": "OfflineRottenTomatoesClassification", "type": "Classification", "metric": "accuracy",
        "value": 63.65, "cut": "full", "baseline": 69.45}
    assert "Average" not in rows
