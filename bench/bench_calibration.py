"""What calibration costs a labelling job (issue 13: "must not slow labelling by more than 10 %").

    python bench/bench_calibration.py                     # default teacher, 6 texts x the 109 default questions

A calibrated job (`--calibration shifted` or `contextual`) pays, once per job, for the teacher's answers to the
content-free inputs (3 prompts x every question; stored in the provenance and reused by every shard and resume),
and per answer for a transform of the log-odds (numpy, at merge). Both are timed here in one run next to the
labelling of the same questions, and the overhead is reported for jobs of several sizes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main(argv=None):
    from distill.calibration import make_calibration
    from distill.corpus import load_corpus_spec
    from distill.teacher import Teacher
    from qaemb_fast.questions import QuestionSet

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="qwen2.5-coder-1.5b-instruct")
    p.add_argument("--texts", type=int, default=6)
    p.add_argument("--out", default="bench/results/calibration_overhead.json")
    args = p.parse_args(argv)

    questions = list(QuestionSet.default().questions)
    texts = [it.text for it in load_corpus_spec("builtin:default")[: args.texts]]
    teacher = Teacher.from_pretrained(args.teacher, questions=questions)
    teacher.encode(texts[:1], questions=[0])  # warm-up

    start = time.perf_counter()
    raw = teacher.encode(texts, batch_size=16)
    per_text = (time.perf_counter() - start) / len(texts)
    start = time.perf_counter()
    calibration = make_calibration("shifted", teacher, questions)
    once = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(100):
        calibration(raw)
    per_answer_row = (time.perf_counter() - start) / (100 * len(texts))

    sizes = (60, 150, 1000, 3300)
    result = {
        "teacher": args.teacher,
        "questions": len(questions),
        "seconds_per_text_all_questions": per_text,
        "content_free_seconds_once_per_job": once,
        "transform_seconds_per_text": per_answer_row,
        "overhead_by_job_texts": {n: (once + n * per_answer_row) / (n * per_text) for n in sizes},
        "texts_for_10_percent": once / (0.1 * per_text),
    }
    print(
        f"labelling: {per_text:.2f} s per text ({len(questions)} questions); calibration: {once:.1f} s once per job "
        f"(content-free inputs), {per_answer_row * 1e6:.1f} us per text (transform)"
    )
    for n, o in result["overhead_by_job_texts"].items():
        print(f"  job of {n:>5} texts: +{o:.1%}")
    print(f"  under 10 % from {np.ceil(result['texts_for_10_percent']):.0f} texts on")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
