"""`text2token targets build`: a target dataset from a corpus, on every rank of a multi-process launch.

It parses the same `DataArguments` as `text2token train` (`--target_method`, `--target_top_k`,
`--target_temperature`, `--max_train_samples`, ...), plus `TargetBuildArguments`. The mapping from
`DataArguments` to a `TargetSpec` lives here and serves training too.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from dataclasses import dataclass, field

import datasets
from transformers import HfArgumentParser

from ..arguments import DataArguments, ModelArguments
from ..backbones import portable_backbone_name, resolve_backbone
from ..corpora import load_corpus
from ..distributed import is_main_process, join_process_group
from ..output_folder import claim_output_folder, sibling_lock
from ..targets.lifecycle import obtain
from ..targets.schema import INFO_FILE
from ..targets.spec import TargetSpec
from ..value_checks import recipe_problems

logger = logging.getLogger("text2token.targets")


@dataclass
class TargetBuildArguments:
    output: str = field(metadata={"help": "Folder of the target dataset; targets of the same spec there are reused."})
    backbone: str = field(default=ModelArguments.backbone, metadata={
        "help": "target_method=data: the tokenizer's model (as for training); target_method=model: the trained "
                "Text2Token model (stage 1) that derives the targets."})
    max_length: int = field(default=ModelArguments.max_length, metadata={
        "help": "target_method=data: the training length, where each text's target tokens are cut (the model's "
                "own length for target_method=model)."})
    work_dir: str | None = field(default=None, metadata={
        "help": "target_method=model: resumable shards of the model pass (default <output>.work)."})
    cpu: bool = field(default=False, metadata={
        "help": "target_method=model: run the corpus pass on the CPU even when an accelerator is visible."})
    ddp_timeout: float | None = field(default=None, metadata={
        "help": "Seconds a collective may wait under a multi-process launch (default 1800, or $TEXT2TOKEN_DDP_TIMEOUT)."})


BUILD_ARGUMENTS = (DataArguments, TargetBuildArguments)


def build_parser(**kwargs) -> HfArgumentParser:
    parser = HfArgumentParser(BUILD_ARGUMENTS, **kwargs)
    # One spelling per option (underscores, as the command line spells them everywhere): drop the
    # hyphenated twins HfArgumentParser adds.
    for action in parser._actions:
        for twin in [name for name in action.option_strings if "-" in name.lstrip("-")]:
            action.option_strings.remove(twin)
            del parser._option_string_actions[twin]
    return parser


def load_target_corpus(args: DataArguments) -> datasets.Dataset:
    """The corpus slice the targets are built from."""
    return load_corpus(args.corpus, text_column=args.text_column, split=args.corpus_split,
                       max_rows=args.max_train_samples, data_files=args.corpus_data_files)


def target_spec(args: DataArguments, corpus: datasets.Dataset, encoder, max_length: int | None = None) -> TargetSpec:
    """The spec of the targets `args` ask for over `corpus`, built by `encoder` (see `TargetSpec.resolve`)."""
    return TargetSpec.resolve(args.target_method, corpus, encoder, source=args.corpus, text_column=args.text_column,
                              split=args.corpus_split, max_rows=args.max_train_samples,
                              data_files=args.corpus_data_files, max_length=max_length, weighting=args.weighting,
                              top_k=args.target_top_k, temperature=args.target_temperature, stopwords=args.stopwords)


def load_encoder(method: str, backbone: str):
    """The tokenizer (data-driven targets), or the trained Text2Token model with its LoRA merged (model-derived)."""
    if method == "data":
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(resolve_backbone(backbone))
    from ..modeling import Text2TokenModel

    model = Text2TokenModel.from_pretrained(backbone, use_safetensors=True)
    model.merge_lora()
    return model


def check_build_values(args: DataArguments, build: TargetBuildArguments) -> None:
    """Every numeric option in range before anything is loaded, each named with its range."""
    problems = recipe_problems(ModelArguments(max_length=build.max_length), args, None)
    if problems:
        raise ValueError("; ".join(problems))


def build_targets(args: DataArguments, build: TargetBuildArguments) -> datasets.Dataset:
    """Build (or keep, when its spec is unchanged) the target dataset in `build.output`."""
    # Under `accelerate launch` / torchrun every rank calls `obtain`: each encodes its share of a
    # model-derived build; a data-driven build runs on the main process with --target_num_proc workers.
    join_process_group(build.ddp_timeout)
    if args.targets:
        raise ValueError(f"targets={args.targets!r} names prebuilt targets, but `targets build` builds them: "
                         f"drop --targets")
    check_build_values(args, build)
    if is_main_process():  # before any work: never over an input or a user's folder; one build per folder
        claim_output_folder(build.output, option="--output", inputs={"backbone": build.backbone, "corpus": args.corpus},
                            records=(INFO_FILE, "dataset_info.json"), lock_path=sibling_lock(build.output))
    encoder = load_encoder(args.target_method, build.backbone)
    corpus = load_target_corpus(args)
    spec = target_spec(args, corpus, encoder, max_length=build.max_length if args.target_method == "data" else None)
    targets = obtain(spec, corpus, encoder, build.output, work_dir=build.work_dir or f"{build.output}.work",
                     shard_size=args.target_shard_size, num_proc=args.target_num_proc,
                     backbone=portable_backbone_name(build.backbone), allow_cpu=build.cpu)
    if is_main_process():
        print(f"{build.output}: {len(targets)} rows of {spec.method} targets (spec {spec.key()})")
    return targets


def run(namespace: argparse.Namespace) -> datasets.Dataset:
    """`build_targets` from the namespace `build_parser()`'s options parsed into (as `text2token targets build`)."""
    return build_targets(*(cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls) if f.init})
                           for cls in BUILD_ARGUMENTS))


def main(argv: list[str] | None = None) -> datasets.Dataset:
    return build_targets(*build_parser().parse_args_into_dataclasses(argv, look_for_args_file=False))
