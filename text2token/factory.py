"""Build the pieces a recipe needs from its arguments: the model and the training targets."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import datasets
import torch

from .adapters import LoraSettings
from .arguments import DataArguments, ModelArguments
from .backbones import portable_backbone_name, resolve_backbone
from .corpora import load_corpus
from .distributed import is_main_process, wait_for_path, world_size
from .model_files import check_model_folder
from .modeling import Text2TokenModel
from .targets import build_data_driven_targets, load_targets, read_info, save_targets, tokenizer_fingerprint
from .targets.model_derived import PRIOR_FILE, build_model_derived_targets
from .targets.spec import (
    TargetSpec,
    build_spec,
    resolve_params,
    stamp,
    stored_spec,
)

logger = logging.getLogger(__name__)

TARGET_METHODS = ("data", "model")


def is_text2token_checkpoint(path: str) -> bool:
    config = Path(path) / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("model_type") == "text2token"


def lora_settings(args: ModelArguments) -> LoraSettings:
    return LoraSettings(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                        target_modules=list(args.lora_target_modules))


def build_model(args: ModelArguments) -> Text2TokenModel:
    """The starting model, without a trainable adapter yet: the backbone wrapped, or a saved
    Text2Token model with its LoRA merged (the paper's stage-1 -> stage-2 hand-over)."""
    source = resolve_backbone(args.backbone)
    check_model_folder(source)  # a damaged folder is named before anything loads
    dtype = getattr(torch, args.dtype) if args.dtype else None
    if is_text2token_checkpoint(source):
        model = Text2TokenModel.from_pretrained(source, dtype=dtype, attn_implementation=args.attn_implementation,
                                                use_safetensors=True)
        model.merge_lora()
        for name in ("pooling", "attention"):
            if getattr(model.config, name) != getattr(args, name):
                raise ValueError(f"{source} was trained with {name}={getattr(model.config, name)!r}, "
                                 f"but this run asks for {name}={getattr(args, name)!r}")
        return model
    return Text2TokenModel.from_backbone(
        source, pooling=args.pooling, attention=args.attention, prompt=args.prompt, max_length=args.max_length,
        dtype=dtype, attn_implementation=args.attn_implementation, trust_remote_code=args.trust_remote_code,
    )


@dataclasses.dataclass
class TargetPlan:
    """What a run's targets will be: their spec, and the corpus slice to build them from (None when
    the user supplied prebuilt targets)."""

    spec: TargetSpec | None
    corpus: datasets.Dataset | None = None
    supplied: datasets.Dataset | None = None


def target_spec(model: Text2TokenModel, args: DataArguments, corpus: datasets.Dataset) -> TargetSpec:
    """The spec of the targets `args` ask for, built by `model` (its tokenizer; for model-derived
    targets its weights and settings) from `corpus`, the slice `load_corpus` returned."""
    config = model.config
    params = resolve_params(args.target_method, pooling=config.pooling, max_length=config.max_length,
                            prompt=config.prompt, attention=config.attention, text_column=args.text_column,
                            weighting=args.weighting, top_k=args.target_top_k,
                            temperature=args.target_temperature, stopwords=args.stopwords)
    return build_spec(args.target_method, params, source=args.corpus, corpus=corpus, text_column=args.text_column,
                      split=args.corpus_split, max_rows=args.max_train_samples, tokenizer=model.tokenizer, model=model,
                      data_files=getattr(args, "corpus_data_files", None))


def plan_targets(model: Text2TokenModel, args: DataArguments) -> TargetPlan:
    """Load the corpus slice and resolve the spec, or load the user's prebuilt targets and check that
    they are what the run's options ask for (refused with the differing fields named: rebuilding
    them here would replace the user's own targets)."""
    if args.target_method not in TARGET_METHODS:
        raise ValueError(f"target_method={args.target_method!r}: expected one of {TARGET_METHODS}")
    if args.targets:
        supplied = load_targets(args.targets)
        info = read_info(supplied)
        if info is not None:
            asked = {"method": args.target_method, "tokenizer_fingerprint": tokenizer_fingerprint(model.tokenizer)}
            asked.update({f"params.{k}": v for k, v in (("top_k", args.target_top_k),
                                                        ("temperature", args.target_temperature)) if v is not None})
            have = {"method": info.method, "tokenizer_fingerprint": info.tokenizer_fingerprint,
                    **{f"params.{k}": v for k, v in info.params.items()}}
            differing = [f"{k}: {have.get(k)!r} (targets) vs {v!r} (this run)" for k, v in asked.items()
                         if have.get(k) != v]
            if differing:
                raise ValueError(f"the targets in {args.targets} differ from what this run asks for: "
                                 f"{'; '.join(differing)}. Rebuild them (text2token targets build) or change the "
                                 f"run's options to match")
        return TargetPlan(spec=TargetSpec(**{k: v for k, v in info.spec.items() if k != "key"})
                          if info is not None and info.spec else None, supplied=supplied)
    corpus = load_corpus(args.corpus, text_column=args.text_column, split=args.corpus_split,
                         max_rows=args.max_train_samples, data_files=args.corpus_data_files)
    if args.target_method == "model":
        if model.config.lora is not None:
            raise ValueError("model-derived targets need the frozen starting model: build them before add_lora")
        if not is_text2token_checkpoint(model.config._name_or_path or ""):
            raise ValueError(f"target_method=model derives targets from a trained Text2Token model (stage 1), but "
                             f"backbone={model.config._name_or_path!r} is not one: train stage 1 first and pass its "
                             f"output folder")
    return TargetPlan(spec=target_spec(model, args, corpus), corpus=corpus)


def prepare_targets(model: Text2TokenModel, args: DataArguments, output_dir: str,
                    backbone_name: str = "", plan: TargetPlan | None = None) -> datasets.Dataset:
    """Load `args.targets`, or reuse/build targets in `<output_dir>/targets`: reused only when the
    spec they were built from has the key of the spec this run asks for; otherwise rebuilt, with the
    differing fields logged.

    Model-derived targets come from `model` as it is (frozen, no adapter): call this before `add_lora`.

    Under a multi-process launch every rank calls this (no `main_process_first` around it): each rank
    encodes its share of a model-derived corpus; data-driven targets are built by the main process
    (tokenizing with `args.target_num_proc` workers). The main process saves the dataset and then
    writes `targets.ready` with the spec's key; the other ranks wait for that file, not in a
    collective, so a long build never trips the process-group timeout.
    """
    plan = plan or plan_targets(model, args)
    if plan.supplied is not None:
        return plan.supplied
    spec, corpus = plan.spec, plan.corpus
    cache = Path(output_dir) / "targets"
    ready = Path(output_dir) / READY_FILE
    if world_size() > 1 and not is_main_process() and args.target_method == "data":
        return _wait_for_targets(cache, ready, spec.key())
    if cache.is_dir() and (world_size() == 1 or _ready_key(ready) == spec.key()):
        targets = load_targets(cache)
        differing = spec.differences(stored_spec(read_info(targets)))
        if not differing:
            logger.info("Reusing the targets in %s (%d rows, spec %s)", cache, len(targets), spec.key())
            return targets
        logger.warning("The targets in %s were built from another spec: rebuilding. Differing: %s",
                       cache, "; ".join(differing))
    if is_main_process():
        ready.unlink(missing_ok=True)
    backbone = portable_backbone_name(backbone_name) if backbone_name else ""
    params = spec.params
    if args.target_method == "data":
        targets = build_data_driven_targets(corpus, model.tokenizer, text_column=params["text_column"],
                                            weighting=params["weighting"], top_k=params["top_k"],
                                            stopwords=args.stopwords, max_length=params["max_length"],
                                            backbone=backbone, corpus=spec.corpus,
                                            num_proc=getattr(args, "target_num_proc", None))
        save_targets(stamp(targets, spec), cache)
    else:
        # Shards of h0 are kept per spec key, so a build for another spec (a retrained stage 1, another
        # corpus) starts clean instead of tripping over stale shards; older keys' shards are dropped.
        work_root = Path(output_dir) / "targets-work"
        work_dir = work_root / spec.key()
        if work_root.is_dir() and is_main_process():
            for stale in work_root.iterdir():
                if stale != work_dir:
                    logger.info("Removing shards of another target spec: %s", stale)
                    shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        targets = build_model_derived_targets(
            model, corpus, work_dir=work_dir, text_column=params["text_column"], temperature=params["temperature"],
            top_k=params["top_k"], shard_size=args.target_shard_size, backbone=backbone, corpus=spec.corpus)
        if targets is None:  # another rank's share is done; the main process assembles and saves
            return _wait_for_targets(cache, ready, spec.key())
        save_targets(stamp(targets, spec), cache, extra_files=[work_dir / PRIOR_FILE])
    _write_ready(ready, spec.key())
    return load_targets(cache)


READY_FILE = "targets.ready"


def _ready_key(ready: Path) -> str | None:
    try:
        return ready.read_text().strip()
    except FileNotFoundError:
        return None


def _write_ready(ready: Path, key: str) -> None:
    partial = ready.with_name(ready.name + ".partial")
    partial.write_text(key)
    partial.replace(ready)


def _wait_for_targets(cache: Path, ready: Path, key: str) -> datasets.Dataset:
    """A rank other than the main one: wait on the file system until the main process has saved the
    targets of spec `key` (a crash of the main process ends the whole launch, so this does not hang)."""
    import time

    logger.info("Waiting for the main process to save the targets in %s", cache)
    while _ready_key(wait_for_path(ready, what="the target dataset")) != key:
        time.sleep(0.5)
    return load_targets(cache)


def load_training_texts(args: DataArguments) -> datasets.Dataset:
    """The corpus as a `text` column without empty rows: what the SimCSE objective trains on."""
    corpus = load_corpus(args.corpus, text_column=args.text_column, split=args.corpus_split,
                         max_rows=args.max_train_samples, data_files=args.corpus_data_files)
    corpus = corpus.select_columns([args.text_column])
    if args.text_column != "text":
        corpus = corpus.rename_column(args.text_column, "text")
    kept = corpus.filter(lambda text: isinstance(text, str) and bool(text.strip()), input_columns="text")
    if len(kept) < len(corpus):
        logger.warning("%d empty or non-text rows of %s are skipped", len(corpus) - len(kept), args.corpus)
    return kept
