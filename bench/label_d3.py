"""Label the D3 tasks with the teacher, round-robin, with one loaded teacher (resumable).

Each task folder written by `qaemb-fast eval d3 --export-texts DIR` is an ordinary labelling job
(`qaemb-fast label --corpus DIR/<task>/texts.jsonl --questions DIR/<task>/questions.json
--out DIR/<task>/teacher-answers --calibration none` labels one task). This script runs the same jobs, `--chunks-per-round` chunks
of every task in turn, so that a run stopped at any time has labelled a similar seeded random subsample of every
task, and it loads the teacher once instead of once per task. Interrupt it at any time; rerunning resumes.
It stores the raw answers (`--calibration none`): `qaemb-fast eval calibration` applies each calibration to them.

    python bench/label_d3.py bench/labels/d3            # until every task is labelled
    python bench/label_d3.py bench/labels/d3-strict --prompt strict --few-shot hard-negatives --rounds 1
                                                        # another prompt, the first 32 texts of every task
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from distill.label import LabelConfig, chunk_path, run_labelling
from distill.teacher import PromptConfig, Teacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="the folder written by `qaemb-fast eval d3 --export-texts`")
    parser.add_argument("--teacher", default=LabelConfig.teacher)
    parser.add_argument("--dtype", default=LabelConfig.dtype)
    parser.add_argument("--device", default=None)
    parser.add_argument("--chunks-per-round", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=0, help="stop after this many rounds (default 0: never)")
    parser.add_argument("--prompt", default=LabelConfig.prompt, help="as `qaemb-fast label --prompt`")
    parser.add_argument("--few-shot", default=LabelConfig.few_shot, help="as `qaemb-fast label --few-shot`")
    args = parser.parse_args()

    tasks = sorted(p for p in Path(args.folder).iterdir() if (p / "texts.jsonl").is_file())
    prompt = PromptConfig(template=args.prompt, few_shot=args.few_shot)
    base = Teacher.from_pretrained(args.teacher, dtype=args.dtype, device=args.device, prompt=prompt)
    for _ in itertools.count() if not args.rounds else range(args.rounds):
        progressed = False
        for task in tasks:
            config = LabelConfig(
                teacher=args.teacher,
                questions=str(task / "questions.json"),
                corpus=str(task / "texts.jsonl"),
                out=str(task / "teacher-answers"),
                dtype=args.dtype,
                device=args.device,
                max_chunks=args.chunks_per_round,
                prompt=args.prompt,
                few_shot=args.few_shot,
                calibration="none",  # raw answers: `qaemb-fast eval calibration` compares calibrations on them
                progress=False,
            )
            before = len(list((task / "teacher-answers" / "parts").glob("chunk-*.npz")))
            teacher = Teacher(
                base.model,
                base.tokenizer,
                questions=config.questions,
                prompt=base.prompt,
                name=base.name,
                engine=base.engine,
            )
            run_labelling(config, teacher=teacher)
            after = len(list(chunk_path(Path(config.out), 0).parent.glob("chunk-*.npz")))
            progressed |= after > before
            print(f"{task.name}: {after} chunks", flush=True)
        if not progressed:
            break


if __name__ == "__main__":
    main()
