"""Range checks of the values a run is given, before any work starts.

Each check names the option and the allowed range in one line, so a recipe with `max_steps: -5`,
`lora_dropout: 1.5` or `target_temperature: 1e-50` stops at once instead of after the targets are built
(or, for stage 2, after the whole model-derived pass), or instead of running something else than asked.
"""

from __future__ import annotations

import math
import numbers

# The smallest temperature whose `r / tau` stays finite in float32 (r < 1): below it, the division
# overflows and the targets come out NaN.
MIN_TEMPERATURE = 1.2e-38
SAVE_STRATEGY_STEPS = "steps"


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def range_problem(option: str, value, *, low=None, high=None, low_open: bool = False, high_open: bool = False,
                  integer: bool = False) -> str | None:
    """None when `value` is a number in the range; otherwise "option=value: must be ... " (one line)."""
    kind = "an integer" if integer else "a number"
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high}")
    wanted = f"must be {kind}" + (f" {' and '.join(bounds)}" if bounds else "")
    if not _is_number(value) or (integer and not isinstance(value, numbers.Integral)):
        return f"{option}={value!r}: {wanted}"
    if not math.isfinite(value):
        return f"{option}={value!r}: {wanted} (finite)"
    if low is not None and (value <= low if low_open else value < low):
        return f"{option}={value!r}: {wanted}"
    if high is not None and (value >= high if high_open else value > high):
        return f"{option}={value!r}: {wanted}"
    return None


def check_range(option: str, value, **bounds) -> None:
    """Raise ValueError with `range_problem`'s line when `value` is out of its range."""
    problem = range_problem(option, value, **bounds)
    if problem:
        raise ValueError(problem)


def temperature_problem(option: str, value) -> str | None:
    if value is None:
        return None
    return range_problem(option, value, low=MIN_TEMPERATURE) and (
        f"{option}={value!r}: must be a finite number >= {MIN_TEMPERATURE:g} (smaller ones overflow float32 to "
        f"NaN targets; the paper uses 1e-4 for mean pooling, 1e-5 for last pooling)")


def check_temperature(option: str, value) -> None:
    problem = temperature_problem(option, value)
    if problem:
        raise ValueError(problem)


def lora_problems(settings: dict, prefix: str = "") -> list[str]:
    """Out-of-range LoRA values (r, lora_alpha, lora_dropout) of a settings dict or of `lora_*` options."""
    checks = ((f"{prefix}r", settings.get("r"), {"low": 1, "integer": True}),
              (f"{prefix}lora_alpha", settings.get("lora_alpha"), {"low": 0, "low_open": True}),
              (f"{prefix}lora_dropout", settings.get("lora_dropout"), {"low": 0, "high": 1, "high_open": True}))
    return [problem for option, value, bounds in checks if (problem := range_problem(option, value, **bounds))]


def _optional(option, value, **bounds):
    return None if value is None else range_problem(option, value, **bounds)


def recipe_problems(model_args, data_args, training_args) -> list[str]:
    """Every out-of-range value of a recipe's three argument dataclasses (empty when all are fine)."""
    problems = [p for p in lora_problems({"r": model_args.lora_r, "lora_alpha": model_args.lora_alpha,
                                          "lora_dropout": model_args.lora_dropout})]
    problems = [p.replace("r=", "lora_r=", 1) if p.startswith("r=") else p for p in problems]
    problems += [
        range_problem("max_length", model_args.max_length, low=1, integer=True),
        _optional("max_train_samples", data_args.max_train_samples, low=1, integer=True),
        _optional("target_top_k", data_args.target_top_k, low=1, integer=True),
        temperature_problem("target_temperature", data_args.target_temperature),
        range_problem("target_shard_size", data_args.target_shard_size, low=1, integer=True),
        _optional("target_num_proc", data_args.target_num_proc, low=1, integer=True),
    ]
    if training_args is not None:
        args = training_args
        if args.max_steps != -1:
            problems.append(range_problem("max_steps", args.max_steps, low=1, integer=True) and
                            f"max_steps={args.max_steps!r}: must be a positive number of steps, or -1 to train "
                            f"num_train_epochs")
        else:
            problems.append(range_problem("num_train_epochs", args.num_train_epochs, low=0, low_open=True))
        strategy = getattr(args.save_strategy, "value", args.save_strategy)
        if strategy == SAVE_STRATEGY_STEPS:
            problems.append(range_problem("save_steps", args.save_steps, low=0, low_open=True) and
                            f"save_steps={args.save_steps!r}: must be > 0 with save_strategy=steps (checkpoints are "
                            f"what a crashed run resumes from); use save_strategy=no to turn them off")
        problems += [
            range_problem("learning_rate", args.learning_rate, low=0),
            range_problem("per_device_train_batch_size", args.per_device_train_batch_size, low=1, integer=True),
            range_problem("gradient_accumulation_steps", args.gradient_accumulation_steps, low=1, integer=True),
            range_problem("warmup_ratio", getattr(args, "warmup_ratio", 0) or 0, low=0, high=1),
            range_problem("warmup_steps", args.warmup_steps, low=0),
            range_problem("weight_decay", args.weight_decay, low=0),
            _optional("max_grad_norm", args.max_grad_norm, low=0),
            _optional("logging_steps", args.logging_steps, low=0, low_open=True),
            range_problem("alignment_every", getattr(args, "alignment_every", 0), low=0, integer=True),
            range_problem("alignment_texts", getattr(args, "alignment_texts", 1), low=1, integer=True),
            range_problem("simcse_temperature", getattr(args, "simcse_temperature", 1), low=0, low_open=True),
            range_problem("simcse_attention_dropout", getattr(args, "simcse_attention_dropout", 0), low=0, high=1,
                          high_open=True),
            range_problem("simcse_hidden_dropout", getattr(args, "simcse_hidden_dropout", 0), low=0, high=1,
                          high_open=True),
            range_problem("mntp_probability", getattr(args, "mntp_probability", 0.5), low=0, high=1, low_open=True,
                          high_open=True),
            report_to_problem(args.report_to),
        ]
    return [problem for problem in problems if problem]


def report_to_problem(names) -> str | None:
    """An unknown tracker name in `report_to` (Trainer would refuse it only once training starts)."""
    from transformers.integrations import INTEGRATION_TO_CALLBACK

    known = {"all", "none", *INTEGRATION_TO_CALLBACK}
    unknown = [name for name in (names or []) if name not in known]
    return f"report_to={unknown[0]!r}: must be one of {sorted(known)}" if unknown else None
