"""Every stage under `accelerate launch` with two gloo processes on the CPU (cpu_ddp2.yaml), compared
with one process: the sharded model-derived target build, DDP training, a SIGKILL of the whole group
and its resume, a NaN on one rank, and the two-stage pipeline. Each launch runs under a timeout, with
a short process-group timeout (launch_helpers.PROCESS_GROUP_TIMEOUT_S)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from text2token.distributed import split_evenly
from text2token.targets import load_targets
from text2token.targets.model_derived import PRIOR_FILE, shards_of_rank

import launch_helpers as launch
from model_fixtures import SENTENCES


def test_shares_cover_the_corpus_once():
    for count, parts in ((10, 3), (2, 4), (0, 2), (7, 7)):
        pieces = [split_evenly(count, parts, i) for i in range(parts)]
        assert [i for piece in pieces for i in piece] == list(range(count))
        assert max(map(len, pieces)) - min(map(len, pieces)) <= 1
    # whole shards per rank, so every text is encoded in the batch it would be in with one process
    assert [list(shards_of_rank(250, 25, r, 2)) for r in range(2)] == [list(range(5)), list(range(5, 10))]


def test_process_group_timeout_and_waiting_on_files(tmp_path, monkeypatch):
    from text2token.distributed import TIMEOUT_ENV, process_group_timeout, wait_for_path

    monkeypatch.setenv(TIMEOUT_ENV, "12.5")
    assert process_group_timeout(1800) == 12.5
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="TEXT2TOKEN_DDP_TIMEOUT='soon': expected a number of seconds"):
        process_group_timeout()
    monkeypatch.delenv(TIMEOUT_ENV)
    assert process_group_timeout(None) == 1800 and process_group_timeout(60) == 60
    with pytest.raises(TimeoutError, match="for the target dataset at .*targets.ready; did the main process fail"):
        wait_for_path(tmp_path / "targets.ready", timeout_s=0.2, poll_s=0.05, what="the target dataset")
    (tmp_path / "targets.ready").write_text("key")
    assert wait_for_path(tmp_path / "targets.ready", timeout_s=0.2) == tmp_path / "targets.ready"


def test_sharded_model_derived_build_equals_one_process(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "model", merge_lora=True)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"{s} variant {i}" for i in range(45) for s in SENTENCES))  # 180 texts

    def build(num_processes):
        out = tmp_path / f"targets-{num_processes}"
        args = ["text2token.cli", "targets", "build", "--target_method", "model", "--backbone", str(tmp_path / "model"),
                "--corpus", str(corpus), "--target_top_k", "8", "--target_shard_size", "20", "--target_temperature", "0.05",
                "--output", str(out)]
        launch.run(launch.command(args, num_processes, module=True), timeout=120, log=tmp_path / f"{out.name}.log")
        return out

    one, two = build(1), build(2)
    log = (tmp_path / f"{two.name}.log").read_text()
    for rank in (0, 1):  # the short process-group timeout of launch_helpers is the one in force
        assert f"Process {rank} of 2 joined the gloo group (timeout 0:00:30)" in log
    work = Path(f"{two}.work")
    assert sorted(p.name for p in work.glob("targets-rank*")) == ["targets-rank00000-of-00002.safetensors",
                                                                   "targets-rank00001-of-00002.safetensors"]
    assert len(list(work.glob("h0-*.safetensors"))) == 9
    a, b = load_targets(one), load_targets(two)
    assert a["text"] == b["text"] and a["source_row"] == b["source_row"]
    assert a["target_ids"] == b["target_ids"]
    np.testing.assert_allclose(np.array(b["target_weights"]), np.array(a["target_weights"]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(b["target_mass"], a["target_mass"], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(load_file(two / PRIOR_FILE)["prior"], load_file(one / PRIOR_FILE)["prior"],
                               rtol=1e-5, atol=1e-8)


STEPS, SAVE_STEPS = 8, 2


def train_command(backbone, corpus, out, num_processes, batch_size, *extra):
    args = ["recipes/train.py", "--config", "recipes/smollm2-135m/stage1.yaml", "--backbone", str(backbone),
            "--corpus", str(corpus), "--output_dir", str(out), "--max_steps", str(STEPS), "--save_steps",
            str(SAVE_STEPS), "--per_device_train_batch_size", str(batch_size), "--logging_steps", "1",
            "--warmup_steps", "0", "--learning_rate", "1e-3", "--seed", "7", "--lora_dropout", "0",
            "--alignment_every", "4", "--alignment_texts", "8", *extra]
    return launch.command(args, num_processes)


def losses(output_dir, step=STEPS):
    state = json.loads((Path(output_dir) / f"checkpoint-{step}" / "trainer_state.json").read_text())
    return [(log["step"], log["loss"]) for log in state["log_history"] if "loss" in log]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, real_tokenizer):
    """One process x batch 16 and two processes x batch 8 on the same data, seed and order."""
    from model_fixtures import save_tiny_backbone

    root = tmp_path_factory.mktemp("ddp")
    backbone = save_tiny_backbone(root / "backbone", real_tokenizer)
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(f"{s} number {i}" for i in range(40) for s in SENTENCES))  # 160 texts
    outputs = {}
    for n, batch in ((1, 16), (2, 8)):
        out = root / f"run-{n}"
        _, log = launch.run(train_command(backbone, corpus, out, n, batch), timeout=150, log=root / f"run-{n}.log")
        outputs[n] = (out, log)
    return {"root": root, "backbone": backbone, "corpus": corpus, **outputs}


def test_two_processes_train_like_one_with_the_same_global_batch(runs):
    (one, _), (two, log) = runs[1], runs[2]
    assert "Waiting for the main process to save the targets" in log  # rank 1 ran
    curve_one, curve_two = losses(one), losses(two)
    assert [s for s, _ in curve_two] == list(range(1, STEPS + 1)) == [s for s, _ in curve_one]
    # Float tolerance: each rank pads to its own longest text and DDP averages two half-batch gradients.
    np.testing.assert_allclose([l for _, l in curve_two], [l for _, l in curve_one], rtol=1e-4, atol=1e-5)
    assert curve_one[0][1] - curve_one[-1][1] > 1e-3, "the run must learn for the comparison to mean anything"
    final_one, final_two = load_file(one / "model.safetensors"), load_file(two / "model.safetensors")
    assert final_one.keys() == final_two.keys()
    moved = 0.0
    start = load_file(runs["backbone"] / "model.safetensors")
    for key in final_one:
        torch.testing.assert_close(final_two[key], final_one[key], rtol=1e-4, atol=1e-5)
        base = "backbone." + key if ("backbone." + key) in start else key
        if key.startswith("backbone.") and key[len("backbone."):] in start:
            moved = max(moved, float((final_one[key] - start[key[len("backbone."):]]).abs().max()))
    assert moved > 1e-4, "training changed no weight"


def test_shared_files_are_written_once_by_the_main_process(runs):
    two, log = runs[2]
    assert log.count("Saved the trained model to") == 1
    marker = json.loads((two / "training_complete.json").read_text())
    assert marker["global_step"] == STEPS
    assert (two / "README.md").is_file() and (two / "alignment.png").is_file()
    assert sorted(p.name for p in two.glob("checkpoint-*")) == ["checkpoint-6", "checkpoint-8"]  # save_total_limit 2
    assert not list(two.glob(".*staging*")) and not list(two.glob(".replaced-*"))
    # Both ranks trained: the main process logged each step once, with the loss averaged over ranks.
    assert len(losses(two)) == STEPS


def test_sigkill_of_the_whole_group_then_rerun_resumes(runs):
    import random
    import time

    out, log = runs["root"] / "killed", runs["root"] / "killed.log"
    cmd = train_command(runs["backbone"], runs["corpus"], out, 2, 8)
    step = random.choice([2, 4])
    process = launch.start(cmd, log)
    deadline = time.time() + 150
    while not (out / f"checkpoint-{step}").is_dir() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    alive = process.poll() is None
    launch.kill_group(process)
    assert alive, f"the run ended before checkpoint-{step} was seen:\n{launch.tail(log)}"
    assert not (out / "training_complete.json").exists()
    _, rerun = launch.run(cmd, timeout=150, log=runs["root"] / "rerun.log")
    assert "Resuming from" in rerun
    straight = runs[2][0]
    np.testing.assert_allclose([l for _, l in losses(out)], [l for _, l in losses(straight)], rtol=1e-5, atol=1e-6)
    final, reference = load_file(out / "model.safetensors"), load_file(straight / "model.safetensors")
    assert final.keys() == reference.keys()
    for key in reference:
        torch.testing.assert_close(final[key], reference[key], rtol=0, atol=1e-6)


def test_pipeline_runs_under_accelerate_launch(runs):
    """The done-when command: `accelerate launch --config_file cpu_ddp2.yaml recipes/pipeline.py --steps 4`."""
    root = runs["root"] / "pipeline"
    common = (f"--backbone {runs['backbone']} --corpus {runs['corpus']} --per_device_train_batch_size 4 "
              f"--alignment_every 0 --save_steps 2 --logging_steps 1")
    args = ["recipes/pipeline.py", "--steps", "4", "--output_root", str(root), "--eval_quick", "8",
            "--stage1_args", common, "--stage2_args",
            f"--corpus {runs['corpus']} --max_train_samples 64 --target_shard_size 16 --per_device_train_batch_size 4 "
            f"--alignment_every 0 --save_steps 2 --logging_steps 1"]
    _, log = launch.run(launch.command(args, 2), timeout=240, log=runs["root"] / "pipeline.log")
    for stage in ("stage1", "stage2"):
        marker = json.loads((root / stage / "training_complete.json").read_text())
        assert marker["global_step"] == 4
    # stage 2's model-derived targets: 64 texts in 4 shards, two per rank, assembled by the main process
    work = next((root / "stage2" / "targets-work").iterdir())
    assert len(list(work.glob("h0-*.safetensors"))) == 4 and len(list(work.glob("targets-rank*"))) == 2
    assert len(load_targets(root / "stage2" / "targets")) == 64
    assert log.count("Pipeline done") == 1


def test_nan_on_one_rank_stops_every_rank_after_saving_the_last_good_state(runs):
    import time

    out, mark = runs["root"] / "nan", runs["root"] / "nan.mark"
    cmd = train_command(runs["backbone"], runs["corpus"], out, 2, 8, "--save_steps", "100")
    cmd[cmd.index("recipes/train.py")] = "tests/nan_on_one_rank.py"
    env = launch.launch_env(T2T_TEST_NAN_RANK="1", T2T_TEST_NAN_AT="4", T2T_TEST_NAN_MARK=str(mark))
    code, log = launch.run(cmd, timeout=150, env=env, check=False, log=runs["root"] / "nan.log")
    stopped = time.time()
    assert code != 0 and mark.is_file(), log[-3000:]
    # Both ranks raised the named error (torchrun prefixes each rank's lines), well before the 30 s
    # process-group timeout would have ended a rank left waiting.
    for rank in (0, 1):
        assert f"[rank{rank}]: text2token.checkpointing.NonFiniteLossError: the loss is NaN or infinite on process 1 " \
               f"of 2 at step 4" in log, log[-3000:]
    assert "timed out" not in log.lower() and "Timeout" not in log
    assert stopped - float(mark.read_text()) < launch.PROCESS_GROUP_TIMEOUT_S
    # The last good state (after step 3) was saved, once, by the main process; nothing after it.
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3"]
    assert not (out / "training_complete.json").exists() and not list(out.glob(".*staging*"))
    weights = load_file(out / "checkpoint-3" / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in weights.values())
    assert json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())["global_step"] == 3
