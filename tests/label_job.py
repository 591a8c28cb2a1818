"""A labelling job in a process of its own, for the kill, signal and concurrency tests.

    python tests/label_job.py OUT TEACHER_FOLDER CORPUS.jsonl QUESTIONS.json LOG [--delay S] [--chunk-size N]

It runs `run_labelling` as `qaemb-fast label` does (the teacher loaded from its folder), appends one JSON line
{"pid", "text"} to LOG for every text the teacher answered (flushed at once, so a test can count across processes
which texts were asked twice), optionally sleeps `--delay` seconds per text (to widen the windows a test kills
in), and exits with Interrupted's status (130 for SIGINT, 143 for SIGTERM) when stopped by a signal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    for name in ("out", "teacher", "corpus", "questions", "log"):
        p.add_argument(name)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--chunk-size", type=int, default=3)
    args = p.parse_args()

    from distill.label import LabelConfig, run_labelling
    from distill.teacher import Teacher
    from qaemb_fast.jobs import Interrupted

    answer_text = Teacher.answer_text

    from distill.calibration import CONTENT_FREE_INPUTS

    def logged(self, text, questions, batch_size=32):
        answers = answer_text(self, text, questions, batch_size)
        if text in CONTENT_FREE_INPUTS:  # the calibration's content-free prompts, not corpus texts
            return answers
        with open(args.log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"pid": os.getpid(), "text": text}) + "\n")
        time.sleep(args.delay)
        return answers

    Teacher.answer_text = logged
    config = LabelConfig(
        teacher=args.teacher,
        questions=args.questions,
        corpus=args.corpus,
        out=args.out,
        dtype="fp32",
        device="cpu",
        chunk_size=args.chunk_size,
        batch_size=4,
        progress=False,
    )
    try:
        run_labelling(config)
    except Interrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
