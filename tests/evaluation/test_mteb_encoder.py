"""Evaluation at scale: `accelerate launch ... text2token evaluate` splits the encoding across ranks and
scores like one process; the model's own inference length and similarity are what evaluation uses."""

import json

import numpy as np
import pytest

import launch_helpers as launch
from model_fixtures import SENTENCES
from text2token.evaluation.mteb_encoder import EmbedderEncoder, EmbeddingCache


def _scores(folder):
    table = json.loads((folder / "summary.json").read_text())
    return {system: {k: v for k, v in row.items() if k != "eval_wall_s"} for system, row in table.items()}


def test_two_process_evaluation_equals_one_process(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "model", merge_lora=True)

    def evaluate(num_processes):
        out = tmp_path / f"eval-{num_processes}"
        args = ["text2token.cli", "evaluate", "--model", str(tmp_path / "model"), "--label", "tiny", "--quick", "12",
                "--batch_size", "4", "--output_dir", str(out), "--cache_dir", str(tmp_path / f"cache-{num_processes}")]
        _, log = launch.run(launch.command(args, num_processes, module=True), timeout=420,
                            log=tmp_path / f"eval-{num_processes}.log")
        return out, log

    (one, _), (two, log) = evaluate(1), evaluate(2)
    for rank in (0, 1):
        assert f"Process {rank} of 2 joined the gloo group" in log
        assert f"runs on cpu:0 in torch.float32 (process {rank} of 2)" in log
    a, b = _scores(one), _scores(two)
    assert a.keys() == b.keys() == {"tiny"}
    assert a["tiny"]["max_tokens"] == b["tiny"]["max_tokens"] == tiny_model.config.encode_length
    for column, value in a["tiny"].items():
        if isinstance(value, float):
            assert b["tiny"][column] == pytest.approx(value, abs=1e-6), column
        else:
            assert b["tiny"][column] == value, column
    # The main process saved every vector, the same ones (batches are the same whatever the split).
    system = next(iter((tmp_path / "cache-1").iterdir())).name
    vectors = [EmbeddingCache(tmp_path / f"cache-{n}", "x") for n in (1, 2)]
    for cache, n in zip(vectors, (1, 2)):
        cache.dir = tmp_path / f"cache-{n}" / system
    one_vectors, two_vectors = vectors[0]._load(), vectors[1]._load()
    assert one_vectors.keys() == two_vectors.keys() and len(one_vectors) > 0
    for key, vec in one_vectors.items():
        np.testing.assert_allclose(two_vectors[key], vec, rtol=1e-5, atol=1e-6)


class _Counting:
    """An embedder that counts the texts it is asked to encode."""

    name, dim = "counting", 3

    def __init__(self):
        self.seen = 0

    def encode(self, texts, batch_size=32, normalize=False):
        self.seen += len(texts)
        return np.array([[len(t), t.count(" "), 1.0] for t in texts], dtype=np.float32)


def test_an_interrupted_encoding_resumes_from_its_last_saved_window(tmp_path):
    texts = [f"{s} number {i}" for i in range(10) for s in SENTENCES]  # 40 texts
    first = _Counting()
    encoder = EmbedderEncoder(first, cache_dir=tmp_path, save_every=8, show_progress_bar=False)

    def fail_after_two_windows(chunk_texts, batch_size, prompt_name=None):
        if first.seen >= 16:
            raise KeyboardInterrupt
        return EmbedderEncoder._encode_batch(encoder, chunk_texts, batch_size, prompt_name)

    encoder._encode_batch = fail_after_two_windows
    with pytest.raises(KeyboardInterrupt):
        encoder.encode_texts(texts, batch_size=4)
    assert len(EmbeddingCache(tmp_path, "counting")) == 16  # two windows of 8 saved
    second = _Counting()
    resumed = EmbedderEncoder(second, cache_dir=tmp_path, save_every=8, show_progress_bar=False)
    vectors = resumed.encode_texts(texts, batch_size=4)
    assert second.seen == 24  # only what was not saved
    np.testing.assert_array_equal(vectors, _Counting().encode(texts))


def test_mteb_metadata_follows_the_models_similarity(tiny_model, tmp_path):
    from text2token.evaluation.mteb_meta import model_meta
    from text2token.evaluation.systems import load_system

    tiny_model.config.similarity = "dot"
    tiny_model.save_pretrained(tmp_path / "model", merge_lora=True)
    assert model_meta(str(tmp_path / "model")).similarity_fn_name.value == "dot"
    embedder = load_system(str(tmp_path / "model"))
    assert EmbedderEncoder(embedder).mteb_model_meta.similarity_fn_name.value == "dot"
    assert EmbedderEncoder(_Counting()).mteb_model_meta.similarity_fn_name.value == "cosine"


def test_select_publishes_the_checkpoint_that_scores_best_on_the_development_task(tiny_model, tmp_path, capsys):
    import torch

    from text2token.commands.select import main as select
    from text2token.modeling import Text2TokenModel

    run = tmp_path / "run"
    tiny_model.save_pretrained(run / "checkpoint-10")  # LoRA unmerged, as the Trainer saves checkpoints
    with torch.no_grad():  # another checkpoint: other adapter weights
        for name, param in tiny_model.named_parameters():
            if "lora_B" in name:
                param.mul_(-3.0)
    tiny_model.save_pretrained(run / "checkpoint-20")
    (run / "checkpoint-30").mkdir()  # a folder without a model is no candidate
    record = select([str(run), "--task", "OfflineLeeSTS", "--quick", "12", "--output", str(tmp_path / "best"),
                     "--batch_size", "8"])
    assert set(record["scores"]) == {"checkpoint-10", "checkpoint-20"}
    assert record["scores"]["checkpoint-10"] != record["scores"]["checkpoint-20"]
    assert record["selected"] == max(record["scores"], key=record["scores"].get)
    assert record["why"].startswith("highest main score on OfflineLeeSTS")
    assert record["max_tokens"] == tiny_model.config.encode_length
    written = json.loads((tmp_path / "best" / "checkpoint_selection.json").read_text())
    assert written == record and f"published {record['selected']}" in capsys.readouterr().out
    published = Text2TokenModel.from_pretrained(tmp_path / "best")
    chosen = Text2TokenModel.from_pretrained(run / record["selected"])
    assert published.config.lora is None
    np.testing.assert_allclose(published.encode(SENTENCES), chosen.encode(SENTENCES), rtol=1e-4, atol=1e-5)
    with pytest.raises(FileExistsError, match="best exists and is not an empty folder"):
        select([str(run), "--task", "OfflineLeeSTS", "--quick", "12", "--output", str(tmp_path / "best")])
    with pytest.raises(FileNotFoundError, match="holds no checkpoint-N folder with a saved model"):
        select([str(tmp_path / "best"), "--task", "OfflineLeeSTS", "--output", str(tmp_path / "other")])


def test_a_run_stores_its_inference_length_and_similarity_in_the_model_config(tiny_backbone_dir):
    from text2token.arguments import ModelArguments
    from text2token.factory import build_model

    model = build_model(ModelArguments(backbone=str(tiny_backbone_dir), inference_max_length=1024, similarity="dot"))
    assert (model.config.encode_length, model.config.similarity) == (1024, "dot")
    default = build_model(ModelArguments(backbone=str(tiny_backbone_dir)))
    assert (default.config.inference_max_length, default.config.similarity) == (None, "cosine")
    with pytest.raises(ValueError, match=r"similarity='euclid': expected one of \('cosine', 'dot'\)"):
        build_model(ModelArguments(backbone=str(tiny_backbone_dir), similarity="euclid"))
