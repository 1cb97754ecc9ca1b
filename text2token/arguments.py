"""Command-line and YAML arguments of the recipes, parsed with `HfArgumentParser`.

A recipe YAML gives defaults; the command line overrides any of them. Each YAML entry is turned into
its `--flag value` form and parsed by the same argparse machinery, so a wrong type or an unknown key
in the YAML fails exactly as it would on the command line, naming the key and the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from transformers import HfArgumentParser, TrainingArguments

from .adapters import LoraSettings
from .backbones import EMBEDDED_DEFAULT
from .configuration import Text2TokenConfig
from .command_line import UsageError
from .corpora import DEFAULT_CORPUS
from .losses import (
    MNTP_BLANK_TOKEN,
    MNTP_PROBABILITY,
    SIMCSE_ATTENTION_DROPOUT,
    SIMCSE_HIDDEN_DROPOUT,
    SIMCSE_TEMPERATURE,
    loss_class,
)
from .distributed import join_process_group
from .targets.data_driven import resolve_stopwords
from .targets.defaults import TARGET_DEFAULTS
from .value_checks import recipe_problems


@dataclass
class ModelArguments:
    backbone: str = field(default=EMBEDDED_DEFAULT, metadata={
        "help": "Causal LM (Hub id or folder), the embedded default, or a saved Text2Token model to continue from "
                "(its LoRA is merged and a fresh one added: the stage-2 hand-over)."})
    pooling: str = field(default="mean", metadata={"help": "mean | last"})
    attention: str = field(default="causal", metadata={"help": "causal | bidirectional"})
    prompt: str | None = field(default=None, metadata={"help": "Template with {text}; last pooling defaults to PromptEOL."})
    max_length: int = field(default=Text2TokenConfig.max_length, metadata={
        "help": "Training length: tokens per text, prompt included."})
    # The adapter's defaults are LoraSettings' (the paper's).
    lora_r: int = LoraSettings.r
    lora_alpha: int = LoraSettings.lora_alpha
    lora_dropout: float = LoraSettings.lora_dropout
    lora_target_modules: list[str] = field(default_factory=lambda: list(LoraSettings().target_modules))
    dtype: str | None = field(default=None, metadata={"help": "float32 | bfloat16 | float16 (weights' dtype)."})
    attn_implementation: str | None = field(default=None, metadata={"help": "sdpa | eager | flash_attention_2"})
    trust_remote_code: bool = field(default=False, metadata={"help": "Run modeling code shipped with the backbone."})
    inference_max_length: int | None = field(default=None, metadata={
        "help": "Tokens per text when the saved model encodes (evaluation; the paper's: 1024). Default: the larger "
                "of 512 and max_length, or what a continued Text2Token model has."})
    similarity: str | None = field(default=None, metadata={
        "help": "cosine | dot: how evaluation scores two embeddings (the authors': dot). Default: cosine, or what a "
                "continued Text2Token model has."})


@dataclass
class DataArguments:
    corpus: str = field(default=DEFAULT_CORPUS, metadata={
        "help": "Named corpus (packaged `wordnet-glosses`, or `gcide` once scripts/build_gcide_corpus.py has built it), a .txt/.parquet/.csv/.jsonl file, a saved dataset folder, or a Hub dataset id."})
    text_column: str = "text"
    corpus_split: str = "train"
    corpus_data_files: list[str] | None = field(default=None, metadata={
        "help": "Files of a Hub dataset to load (e.g. wiki1m_for_simcse.txt of princeton-nlp/datasets-for-simcse)."})
    max_train_samples: int | None = None
    targets: str | None = field(default=None, metadata={
        "help": "Prebuilt targets: a saved folder, a .parquet file or a Hub dataset id (owner/name); otherwise targets "
                "are built into <output_dir>/targets."})
    target_method: str = field(default="data", metadata={
        "help": "data: the text's own tokens (stage 1) | model: tokens the frozen starting model derives (stage 2; "
                "needs --backbone to be a trained Text2Token model)"})
    weighting: str = field(default=TARGET_DEFAULTS.weighting, metadata={"help": "Data-driven weighting: uniform (paper) | idf"})
    stopwords: str = field(default=TARGET_DEFAULTS.stopwords, metadata={
        "help": "Data-driven stopword list: nltk (the paper's, shipped with text2token) | sklearn | none | "
                "a file of words (whitespace-separated, # comments)"})
    target_top_k: int | None = field(default=None, metadata={
        "help": "Keep at most this many target tokens (model-derived default: 32)."})
    target_temperature: float | None = field(default=None, metadata={
        "help": "Model-derived temperature tau; default the paper's (1e-4 mean pooling, 1e-5 last pooling)."})
    target_shard_size: int = field(default=TARGET_DEFAULTS.shard_size, metadata={"help": "Texts per resumable shard of the model pass."})
    target_num_proc: int | None = field(default=None, metadata={
        "help": "Tokenizer worker processes for data-driven targets (datasets.map num_proc); for large corpora."})


@dataclass
class Text2TokenTrainingArguments(TrainingArguments):
    merge_lora_on_save: bool = field(default=True, metadata={
        "help": "Fold the LoRA adapter into the weights of the final saved model (checkpoints stay unmerged)."})
    loss: str = field(default="token_targets", metadata={
        "help": "The training objective (text2token.losses): token_targets: KL to the target token distributions "
                "(Text2Token) | simcse: unsupervised SimCSE (two dropout views, in-batch negatives) | mntp: masked "
                "next-token prediction (LLM2Vec's first step; use with attention=bidirectional)"})
    simcse_temperature: float = field(default=SIMCSE_TEMPERATURE, metadata={"help": "SimCSE similarity temperature."})
    simcse_attention_dropout: float = field(default=SIMCSE_ATTENTION_DROPOUT, metadata={
        "help": "SimCSE: attention dropout turned on in the backbone while training (LLM2Vec's simcse_dropout)."})
    simcse_hidden_dropout: float = field(default=SIMCSE_HIDDEN_DROPOUT, metadata={
        "help": "SimCSE: dropout on each decoder layer's attention and MLP outputs while training (off by default: "
                "0.1 drowns SmolLM2's views in noise, see text2token/losses.py)."})
    mntp_probability: float = field(default=MNTP_PROBABILITY, metadata={
        "help": "MNTP: share of tokens masked and predicted (LLM2Vec's mlm_probability for Llama backbones)."})
    mntp_mask_token: str = field(default=MNTP_BLANK_TOKEN, metadata={
        "help": "MNTP: mask token when the tokenizer has none (LLM2Vec's 'blank' is '_')."})
    alignment_every: int = field(default=0, metadata={
        "help": "Every N steps, log hit@10 and local/global alignment of the embedding's top tokens on held-out "
                "texts (0: off); writes <output_dir>/alignment.png"})
    alignment_texts: int = field(default=64, metadata={"help": "Texts held out of training for --alignment_every."})
    save_safetensors: bool = True
    # A list, so `--report_to tensorboard trackio` (and a YAML list) parse: the parent's `str | list`
    # type makes the parser take one name only. A comma-separated string is split too.
    report_to: list[str] = field(default_factory=lambda: ["none"], metadata={
        "help": "Trackers to log to (tensorboard, trackio, wandb, mlflow...; several space- or comma-separated), "
                "'all' or 'none'."})
    overwrite: bool = field(default=False, metadata={
        "help": "Write into an output_dir that holds files this run did not write (same-named files are replaced); "
                "a folder holding the run's inputs (backbone, targets, corpus) is refused all the same."})
    allow_unverified_targets: bool = field(default=False, metadata={
        "help": "Train on targets that carry no TargetInfo (text2token_targets.json), whose tokenizer cannot "
                "be checked against the model's."})

    def __post_init__(self):
        loss_class(self.loss)  # an unknown name fails here, before any model loads
        self.report_to = _tracker_names(self.report_to)
        # Before TrainingArguments sets up the device: join the launcher's group with ddp_timeout (gloo
        # on a machine without a GPU; Trainer's own CPU path would drop the timeout).
        join_process_group(self.ddp_timeout)
        super().__post_init__()



def _tracker_names(report_to):
    """`report_to` as the parent class takes it, with comma-separated names ("tensorboard,trackio") split."""
    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    return [name.strip() for entry in names for name in str(entry).split(",") if name.strip()]


class _RaisingParser(HfArgumentParser):
    """Raises instead of printing usage and exiting, so a bad YAML value names its file; no abbreviations
    (`--learning_rat` must not start a run as `--learning_rate`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(message.replace("argument ", "option ", 1))


# What `train --help` lists of transformers' TrainingArguments (`--help-all` lists every one).
COMMON_TRAINING_OPTIONS = ("output_dir", "max_steps", "num_train_epochs", "learning_rate", "per_device_train_batch_size",
                           "gradient_accumulation_steps", "lr_scheduler_type", "warmup_steps", "weight_decay",
                           "logging_steps", "save_steps", "save_total_limit", "seed", "bf16", "gradient_checkpointing",
                           "resume_from_checkpoint", "push_to_hub", "hub_model_id")
CONFIG_HELP = "a recipe YAML: its keys are defaults of the options below; flags on the command line override them"


def _recipe_help(dataclass_types, prog: str, full: bool) -> str:
    """`--help`: --config, then the recipe's own options and the common training ones; `--help-all`: all."""
    parser = _RaisingParser(dataclass_types, prog=prog, usage=f"{prog} --config YAML [--key value ...]",
                            description="Options are spelled with underscores; run with --help-all for every "
                                        "option of transformers' TrainingArguments.", add_help=False)
    if full:
        parser.add_argument_group("recipe").add_argument("--config", metavar="YAML", help=CONFIG_HELP)
        return parser.format_help()
    brief = argparse.ArgumentParser(prog=prog, usage=parser.usage, description=parser.description, add_help=False)
    brief.add_argument("--config", metavar="YAML", help=CONFIG_HELP)
    brief.add_argument("--help-all", action="store_true", help="every option, TrainingArguments' included")
    actions = {action.dest: action for action in parser._actions}
    inherited = {f.name for f in dataclasses.fields(TrainingArguments)}
    for dc in dataclass_types:
        own = [f.name for f in dataclasses.fields(dc) if f.init and not (issubclass(dc, TrainingArguments)
                                                                         and f.name in inherited)]
        if issubclass(dc, TrainingArguments):
            own += [name for name in COMMON_TRAINING_OPTIONS if name not in own]
        group = brief.add_argument_group(f"{dc.__name__} options")
        for name in own:
            if name in actions:
                group._add_action(actions[name])  # the same action objects: help text as the full parser's
    return brief.format_help()


def _yaml_config(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"recipe config {path} does not exist")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise UsageError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not config:  # an empty file would start a full default run
        raise UsageError(f"{path}: the recipe is empty; give at least one option: value (see --help)")
    if not isinstance(config, dict):
        raise UsageError(f"{path}: expected a mapping of option: value, got {type(config).__name__}")
    return config


def _as_flags(config: dict) -> list[str]:
    argv = []
    for key, value in config.items():
        if value is None:
            continue
        if isinstance(value, list):
            argv += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            argv += [f"--{key}", json.dumps(value)]
        else:
            argv += [f"--{key}", str(value)]
    return argv


def parse_recipe_args(dataclass_types, argv: list[str] | None = None, overrides: dict | None = None,
                      prog: str = "text2token train"):
    """Parse `--config recipe.yaml` (optional) plus command-line flags into the dataclasses; `overrides`
    (option -> value, as in a YAML) win over both and go through the same type checks. `--help` prints
    the recipe's options, `--help-all` every option; a mistake raises `UsageError` naming the option."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config", default=None)
    pre.add_argument("-h", "--help", action="store_true")
    pre.add_argument("--help-all", "--help_all", dest="help_all", action="store_true")
    known, rest = pre.parse_known_args(argv)
    if known.help or known.help_all:
        print(_recipe_help(dataclass_types, prog, full=known.help_all))
        raise SystemExit(0)
    parser = _RaisingParser(dataclass_types, prog=prog)
    yaml_flags: list[str] = []
    if known.config:
        path = Path(known.config)
        config = _yaml_config(path)
        known_keys = {f.name for dc in dataclass_types for f in dataclasses.fields(dc) if f.init}
        unknown = sorted(set(config) - known_keys)
        if unknown:
            raise UsageError(f"{path}: unknown option(s) {unknown}; run with --help-all for the valid ones")
        yaml_flags = _as_flags(config)
        checker = _RaisingParser(dataclass_types)
        try:
            checker.parse_args(yaml_flags)  # types and choices only: overrides may still change values
        except ValueError as exc:
            raise UsageError(f"{path}: {exc}") from None
    override_flags = _as_flags(overrides or {})
    parsed = parser.parse_args_into_dataclasses(args=yaml_flags + rest + override_flags, look_for_args_file=False,
                                                return_remaining_strings=True)
    *dataclasses_, remaining = parsed
    if remaining:
        raise UsageError(f"unrecognized option(s): {' '.join(remaining)} (see {prog} --help; options are not "
                         "abbreviated)")
    return tuple(dataclasses_)


def check_recipe(model_args: ModelArguments, data_args: DataArguments, training_args) -> None:
    """Refuse out-of-range values, and option combinations that would run but not do what they say."""
    problems = recipe_problems(model_args, data_args, training_args)
    if problems:
        raise ValueError("; ".join(problems))
    loss = getattr(training_args, "loss", "token_targets")
    if not loss_class(loss).needs_targets and data_args.targets:
        problems.append(f"loss={loss} trains on plain text: drop targets (or use loss=token_targets)")
    if data_args.target_method == "model" and data_args.weighting != TARGET_DEFAULTS.weighting:
        problems.append(f"weighting={data_args.weighting!r} applies to data-driven targets, not target_method=model")
    if data_args.target_method == "model" and data_args.stopwords != TARGET_DEFAULTS.stopwords:
        problems.append(f"stopwords={data_args.stopwords!r} applies to data-driven targets, not target_method=model")
    if data_args.target_method == "data":
        try:
            resolve_stopwords(data_args.stopwords)
        except (OSError, ValueError) as exc:
            problems.append(str(exc))
    if data_args.target_method == "data" and data_args.target_temperature is not None:
        problems.append("target_temperature applies to model-derived targets (target_method=model)")
    if model_args.pooling == "last" and model_args.prompt == "{text}":
        problems.append("last pooling reads the token after the prompt; prompt='{text}' leaves none "
                        "(omit prompt for PromptEOL)")
    if data_args.max_train_samples is not None and data_args.max_train_samples < 1:
        problems.append(f"max_train_samples={data_args.max_train_samples}: must be positive")
    if problems:
        raise ValueError("conflicting options: " + "; ".join(problems))
