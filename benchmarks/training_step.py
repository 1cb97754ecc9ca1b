"""Training step throughput, measured side by side on one batch.

- Text2Token vs SimCSE: the same trainer, backbone, LoRA, batch and lengths; only `loss`
  differs. SimCSE runs the backbone over each text twice per step (two dropout views, one batch of
  2B rows), Text2Token once plus a
  [batch, vocab] head projection, so Text2Token should reach about twice the texts/second.
- Stage 2 vs stage 1: model-derived targets (top-32) against data-driven ones; the sparse KL
  gathers K log-probabilities either way, so the step time should not move.
- Overhead over bare torch: `model(..., target_ids, target_weights)` + backward + AdamW step against
  the backbone's decoder forward + backward of `last_hidden_state.mean()` + the same AdamW step, on
  the same batch and LoRA. What is left is pooling, the fp32 head projection and the loss.

A "trainer step" is what `Trainer` does per batch: `training_step` (forward + backward), gradient
clipping, optimizer and scheduler step, `zero_grad`. The batch is collated once, outside the timing.
"""

from __future__ import annotations

import contextlib
import tempfile

import common  # first: it quiets tqdm before datasets imports it
from common import Row, ratio_row

import datasets
import torch

# (batch, tokens, repetitions): the embedded model trains at a few hundred tokens/s on two cores, so it
# gets a smaller batch; the ratios measured here hardly depend on the batch shape.
SETTINGS = {
    ("tiny", False): (32, 128, 40), ("tiny", True): (32, 128, 15),
    ("embedded", False): (8, 64, 7), ("embedded", True): (4, 32, 5),
}


class Setup:
    """A model with a fresh LoRA, one collated batch with each kind of target, and trainers."""

    def __init__(self, name: str, quick: bool):
        from text2token.collator import Text2TokenCollator
        from text2token.targets import build_data_driven_targets
        from text2token.targets.model_derived import build_model_derived_targets

        self.batch_size, self.length, self.reps = SETTINGS[(name, quick)]
        self.tmp = tempfile.TemporaryDirectory(prefix="t2t-bench-")
        texts = datasets.Dataset.from_dict({"text": common.fixed_length_texts(self.batch_size, self.length)})
        # Stage 2 as the recipe runs it: targets from the frozen model first, then a fresh adapter.
        self.model = common.build_model(name, lora=False, max_length=self.length)
        stage2 = build_model_derived_targets(self.model, texts, work_dir=f"{self.tmp.name}/work", top_k=32)
        common.add_lora(self.model)
        stage1 = build_data_driven_targets(texts, self.model.tokenizer)
        collate = Text2TokenCollator(self.model.tokenizer, max_length=self.length)
        self.stage1 = collate([stage1[i] for i in range(len(stage1))])
        self.stage2 = collate([stage2[i] for i in range(len(stage2))])
        assert self.stage1["input_ids"].shape == (self.batch_size, self.length)
        assert torch.equal(self.stage1["input_ids"], self.stage2["input_ids"])
        self.trainers = {objective: self._trainer(objective) for objective in ("token_targets", "simcse")}
        self.model.train()

    def _trainer(self, objective: str):
        from text2token.arguments import Text2TokenTrainingArguments
        from text2token.trainer import Text2TokenTrainer

        args = Text2TokenTrainingArguments(
            output_dir=f"{self.tmp.name}/{objective}", loss=objective, per_device_train_batch_size=self.batch_size,
            learning_rate=5e-5, use_cpu=True, report_to="none", save_strategy="no", logging_strategy="no",
            disable_tqdm=True)
        trainer = Text2TokenTrainer(model=self.model, args=args)
        trainer.create_optimizer_and_scheduler(num_training_steps=10_000)
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer's own loop, which we bypass
        return trainer

    def trainer_step(self, objective: str, batch: dict) -> None:
        trainer = self.trainers[objective]
        # The SimCSE loss adds dropout noise to the shared model; the Text2Token step runs without it.
        quiet = self.trainers["simcse"].loss.noise.suspended() if objective != "simcse" else contextlib.nullcontext()
        with quiet:
            trainer.training_step(trainer.model, dict(batch))
        trainer.accelerator.clip_grad_norm_(trainer.model.parameters(), trainer.args.max_grad_norm)
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        trainer.model.zero_grad()

    def direct_step(self) -> None:
        """The model's own forward with targets, backward and an AdamW step, without Trainer."""
        out = self.model(**self.stage1, return_logits=False)
        out.loss.backward()
        self.trainers["token_targets"].optimizer.step()
        self.model.zero_grad()

    def bare_step(self) -> None:
        """Plain torch on the same LoRA'd decoder: forward, trivial loss, backward, the same AdamW step."""
        decoder = self.model.backbone.get_decoder()
        hidden = decoder(input_ids=self.stage1["input_ids"], attention_mask=self.stage1["attention_mask"],
                         use_cache=False).last_hidden_state
        hidden.mean().backward()
        self.trainers["token_targets"].optimizer.step()
        self.model.zero_grad()


def run(name: str, quick: bool) -> list[Row]:
    setup = Setup(name, quick)
    b, n = setup.batch_size, setup.length
    print(f"[training_step] {name}: batch {b} x {n} tokens, {setup.reps} repetitions", flush=True)
    t = common.compare({
        "text2token": lambda: setup.trainer_step("token_targets", setup.stage1),
        "simcse": lambda: setup.trainer_step("simcse", setup.stage1),
        "stage2": lambda: setup.trainer_step("token_targets", setup.stage2),
        "direct": setup.direct_step,
        "bare": setup.bare_step,
    }, reps=setup.reps)
    for key, timing in t.items():
        print(f"  {key:10s} median {timing.median:.4f}s  ({timing.spread})", flush=True)
    shape = f"{b}x{n}"
    return [
        Row(name, f"train step {shape}: Text2Token texts/s", f"{b / t['text2token'].median:.1f}"),
        Row(name, f"train step {shape}: SimCSE texts/s", f"{b / t['simcse'].median:.1f}"),
        ratio_row(name, "train step: Text2Token / SimCSE texts/s", t["simcse"], t["text2token"], ">=", 1.8),
        ratio_row(name, "train step: stage-2 (top-32) / stage-1 time", t["stage2"], t["text2token"], "<=", 1.05),
        # forward with targets + backward + AdamW against decoder + mean() + backward + AdamW
        ratio_row(name, "train step: Text2Token / bare torch time", t["direct"], t["bare"], "<=", 1.10),
        Row(name, "train step: Trainer step / direct model step time",
            f"{t['text2token'].median / t['direct'].median:.2f}x"),
    ]


def profile(name: str, quick: bool) -> None:
    """torch.profiler tables of the direct Text2Token step and the bare step."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    setup = Setup(name, quick)
    steps = 10 if name == "tiny" else 2
    for label, fn in (("text2token direct step", setup.direct_step), ("bare step", setup.bare_step)):
        fn()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                fn()
        print(f"\n=== {name}: {label} ({steps} steps) ===")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    common.main(run, __doc__.splitlines()[0], profile)
