"""Student training throughput, bf16-mixed vs 32-true, measured in one run on this machine.

    python bench/bench_training.py [--steps 20] [--warmup 3] [--batch-size 32] [--precisions bf16-mixed 32-true]

Same model for every precision (the packaged all-MiniLM-L6-v2 + a head for the 109 default questions, re-initialised
with the same seed), same texts (synthetic 11-word windows, like the paper's 10-grams plus the current word), and the
real training path (LabelledDataModule + StudentLightningModule + Lightning Trainer). Steps before `--warmup` are not
timed (allocator, oneDNN kernel selection). Prints a markdown table and the bf16/fp32 ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from distill.labelled_dataset import write_labelled_dataset
from qaemb_fast.questions import QuestionSet
from qaemb_fast.student import StudentModel
from training.data import LabelledDataModule
from training.module import StudentLightningModule


class StepTimer(L.Callback):
    """Wall time from the start of batch `warmup` to the end of the last batch."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.examples = warmup, None, None, 0

    def _sync(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup:
            self._sync()
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.start is not None:
            self.examples += len(batch["targets"])
            self._sync()
            self.end = time.perf_counter()


def synthetic_dataset(folder: Path, n: int, questions: QuestionSet, tokenizer, seed: int = 0) -> Path:
    """n texts of 11 real vocabulary words, one document each, random teacher answers."""
    rng = np.random.default_rng(seed)
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and w.islower() and len(w) >= 3]
    texts = [" ".join(rng.choice(words, 11)) for _ in range(n)]
    answers = rng.random((n, len(questions)), dtype=np.float32)
    prov = {"questions": list(questions.questions), "teacher": "random (benchmark)"}
    return write_labelled_dataset(folder, texts, [f"t{i}" for i in range(n)], answers, prov)


def measure(precision: str, data: Path, args) -> dict:
    L.seed_everything(0, workers=True)
    model = StudentModel.from_backbone(None, questions="default", max_length=args.max_length)
    dm = LabelledDataModule(data, model.tokenizer, max_length=args.max_length, batch_size=args.batch_size,
                            val_fraction=0.0, test_fraction=0.0)  # fmt: skip
    timer = StepTimer(args.warmup)
    trainer = L.Trainer(
        accelerator=args.accelerator, devices=1, precision=precision, max_steps=args.warmup + args.steps,
        limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
    )  # fmt: skip
    trainer.fit(StudentLightningModule(model), datamodule=dm)
    seconds = timer.end - timer.start
    return {"precision": precision, "examples_per_s": timer.examples / seconds, "s_per_step": seconds / args.steps}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20, help="timed optimisation steps per precision")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--batch-size", type=int, default=32, help="texts per step")
    p.add_argument("--max-length", type=int, default=128, help="token limit (the windows are ~15 tokens)")
    p.add_argument("--precisions", nargs="+", default=["bf16-mixed", "32-true"], help="Lightning precisions")
    p.add_argument("--accelerator", default="cpu", help="Lightning accelerator")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = StudentModel.from_backbone(None, questions="default").tokenizer
        n = (args.warmup + args.steps) * args.batch_size
        data = synthetic_dataset(Path(tmp) / "data", n, QuestionSet.default(), tokenizer)
        rows = [measure(prec, data, args) for prec in args.precisions]

    print(f"\nStudent training throughput: all-MiniLM-L6-v2 + 109-question head, batch {args.batch_size}, "
          f"{args.steps} timed steps after {args.warmup} warm-up steps, 11-word texts")  # fmt: skip
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, accelerator {args.accelerator}\n")  # fmt: skip
    print("| precision | examples/s | s/step |\n|---|---|---|")
    for r in rows:
        print(f"| {r['precision']} | {r['examples_per_s']:.1f} | {r['s_per_step']:.3f} |")
    by = {r["precision"]: r["examples_per_s"] for r in rows}
    if "bf16-mixed" in by and "32-true" in by:
        print(f"\nbf16-mixed / 32-true: {by['bf16-mixed'] / by['32-true']:.2f}x")


if __name__ == "__main__":
    main()
