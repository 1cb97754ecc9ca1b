"""The one device rule (text2token.devices): every model pass outside the Trainer runs on the process's
accelerator, and a corpus pass on the CPU beside a visible accelerator is refused unless asked for.
No GPU here: the accelerator is faked by what torch and accelerate report."""

import logging

import datasets
import pytest
import torch

from text2token import devices
from text2token.devices import place_model, process_device, resolve_dtype
from text2token.targets.model_derived import build_model_derived_targets

from model_fixtures import SENTENCES


class _CpuState:
    """accelerate's process state as a `--cpu` launch on a GPU node sets it."""

    device = torch.device("cpu")


@pytest.fixture
def cuda_visible_but_state_on_cpu(monkeypatch):
    import accelerate

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(accelerate, "PartialState", _CpuState)
    monkeypatch.delenv(devices.ALLOW_CPU_ENV, raising=False)


def test_model_derived_pass_on_the_cpu_beside_an_accelerator_is_refused(cuda_visible_but_state_on_cpu, tiny_model,
                                                                        tmp_path):
    tiny_model.merge_lora()
    corpus = datasets.Dataset.from_dict({"text": SENTENCES})
    with pytest.raises(ValueError, match=r"the model-derived target pass would run on the CPU while cuda is visible"
                                         r".*Ask for the CPU explicitly"):
        build_model_derived_targets(tiny_model, corpus, work_dir=tmp_path / "work", top_k=4)
    assert not (tmp_path / "work").exists()  # refused before anything was written
    # Asked for: it runs, on the CPU.
    targets = build_model_derived_targets(tiny_model, corpus, work_dir=tmp_path / "work", top_k=4, allow_cpu=True)
    assert len(targets) == len(SENTENCES) and tiny_model.device.type == "cpu"


def test_the_environment_variable_also_asks_for_the_cpu(cuda_visible_but_state_on_cpu, monkeypatch):
    with pytest.raises(ValueError, match="evaluation of m would run on the CPU while cuda is visible"):
        process_device(purpose="evaluation of m")
    monkeypatch.setenv(devices.ALLOW_CPU_ENV, "1")
    assert process_device(purpose="evaluation of m") == torch.device("cpu")


def test_evaluation_loader_follows_the_rule(cuda_visible_but_state_on_cpu, tiny_model, tmp_path):
    from text2token.evaluation.systems import load_system

    tiny_model.save_pretrained(tmp_path / "model", merge_lora=True)
    with pytest.raises(ValueError, match="evaluation of .*model would run on the CPU while cuda is visible"):
        load_system(str(tmp_path / "model"))
    assert load_system(str(tmp_path / "model"), allow_cpu=True).model.device.type == "cpu"


def test_without_an_accelerator_the_cpu_is_the_process_device_and_the_pass_is_logged(tiny_model, caplog,
                                                                                   monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "visible_accelerator", lambda: None)
    with caplog.at_level(logging.INFO, logger="text2token.devices"):
        place_model(tiny_model, purpose="the probe pass")
    assert "the probe pass runs on cpu in torch.float32 (process 0 of 1)" in caplog.text


def test_dtype_auto_is_bf16_on_an_accelerator_and_float32_on_the_cpu(monkeypatch):
    assert resolve_dtype("auto", torch.device("cpu")) is torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype("auto", torch.device("cuda", 0)) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_dtype("auto", torch.device("cuda", 0)) is torch.float16
    assert resolve_dtype(None, torch.device("cuda", 0)) is None  # keep the weights' dtype
    assert resolve_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(ValueError, match="dtype='half-ish': expected auto"):
        resolve_dtype("half-ish", torch.device("cpu"))


def test_an_evaluated_model_in_bf16_gets_its_own_cache_name(tiny_model, tmp_path):
    from text2token.evaluation.systems import load_system

    tiny_model.save_pretrained(tmp_path / "model", merge_lora=True)
    float32 = load_system(str(tmp_path / "model"))
    bf16 = load_system(str(tmp_path / "model"), dtype="bfloat16")
    assert bf16.model.dtype is torch.bfloat16 and bf16.name == f"{float32.name}-bfloat16"
    assert bf16.encode(SENTENCES[:2]).dtype.name == "float32"
