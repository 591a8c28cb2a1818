"""Student vs teacher throughput on the same texts and questions, in one run, plus the student's peak memory.

    python bench/bench_student.py                                   # shipped default student vs its teacher
    python bench/bench_student.py --student checkpoints/NAME --teacher-texts 8

Both answer ALL of the student's questions for the same texts (the first N of the default corpus). The teacher is
timed on `--teacher-texts` texts (it is slow); the student on the same texts, repeated until `--min-seconds` have
passed, so both rates are texts/s on identical inputs. A student with a question head is also timed with
`--new-questions` held-out pool questions added to its own (their rows written once, then cached, as `encode` does):
the extra cost per added question, as a fraction of a text's forward pass, and the one-time cost of writing a
question's row. Memory is measured in a fresh child process that loads only
the student and encodes `--memory-texts` texts: RSS after loading, and the peak RSS during `encode`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# VmHWM (peak RSS of this process image) from /proc: unlike ru_maxrss it is not inherited across fork + exec.
MEMORY_PROBE = r"""
import json, sys
def hwm_mb():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
from qaemb_fast import QAEmbedder
texts = json.load(open(sys.argv[2]))
emb = QAEmbedder.from_pretrained(sys.argv[1] or None)
emb.encode(texts[:32])
loaded = hwm_mb()
emb.encode(texts, batch_size=32)
peak = hwm_mb()
print(json.dumps({"peak_rss_mb": peak, "loaded_rss_mb": loaded, "encode_increase_mb": peak - loaded}))
"""


def main(argv=None):
    import numpy as np
    import torch

    from bench.bench_teacher import machine
    from distill.corpus import load_corpus_spec
    from distill.teacher import Teacher
    from qaemb_fast import QAEmbedder

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--student", default=None, help="student checkpoint folder (default: the shipped default)")
    p.add_argument("--teacher", default=None, help="teacher (default: the one named in the student's provenance)")
    p.add_argument("--teacher-texts", type=int, default=8, help="texts the teacher answers (all questions)")
    p.add_argument("--min-seconds", type=float, default=10.0, help="time the student at least this long")
    p.add_argument("--memory-texts", type=int, default=1000, help="texts for the memory probe")
    p.add_argument("--new-questions", type=int, default=100, help="held-out questions added (question-head students)")
    p.add_argument("--out", default="bench/results/student.json")
    p.add_argument(
        "--update-card",
        action="store_true",
        help="also write the result into the student's model card (README.md), section '## Speed and memory'",
    )
    p.add_argument(
        "--card-only", action="store_true", help="measure nothing: write the card section from the existing --out JSON"
    )
    args = p.parse_args(argv)
    if args.card_only:
        update_card(args.student, json.loads(Path(args.out).read_text()))
        return

    student = QAEmbedder.from_pretrained(args.student)
    teacher_name = args.teacher or student.model.config.teacher.get("teacher") or "qwen2.5-coder-1.5b-instruct"
    corpus = [it.text for it in load_corpus_spec("builtin:default")]
    texts = corpus[: args.teacher_texts]

    student.encode(texts)  # warm-up
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.min_seconds:
        student.encode(texts, batch_size=32)
        runs += 1
    student_tps = runs * len(texts) / (time.perf_counter() - start)

    extra = (
        any_question_cost(student, texts, args.new_questions, args.min_seconds) if student.answers_any_question else {}
    )

    teacher = Teacher.from_pretrained(teacher_name, questions=student.questions)
    teacher.encode(texts[:1], questions=[0])  # warm-up
    start = time.perf_counter()
    teacher_answers = teacher.encode(texts)
    teacher_tps = len(texts) / (time.perf_counter() - start)
    student_answers = student.encode(texts)

    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(corpus[: args.memory_texts], f)
        f.flush()
        probe = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, args.student or "", f.name],
            capture_output=True,
            text=True,
            check=True,
        )
    memory = json.loads(probe.stdout.strip().splitlines()[-1])

    result = {
        "student": str(args.student or "default"),
        "teacher": teacher_name,
        "questions": len(student.questions),
        "texts": len(texts),
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "student_texts_per_s": student_tps,
        "teacher_texts_per_s": teacher_tps,
        "teacher_pairs_per_s": teacher_tps * len(student.questions),
        "speedup": student_tps / teacher_tps,
        "mean_abs_diff_on_these_texts": float(np.abs(student_answers - teacher_answers).mean()),
        **memory,
        **extra,
    }
    print(f"\n{len(texts)} texts x {len(student.questions)} questions, {torch.get_num_threads()} threads")
    print("\n| model | texts/s | relative |\n|---|---:|---:|")
    print(f"| teacher {teacher_name} | {teacher_tps:.3f} | 1x |")
    print(f"| student {result['student']} | {student_tps:.1f} | {result['speedup']:.0f}x |")
    print(
        f"\nstudent process: {memory['loaded_rss_mb']:.0f} MB RSS after loading, peak {memory['peak_rss_mb']:.0f} MB "
        f"while encoding {args.memory_texts} texts (+{memory['encode_increase_mb']:.0f} MB)"
    )
    if extra:
        print(
            f"any question: +{extra['new_questions']} unseen questions cost {extra['extra_question_fraction'] * 100:.2f} % "
            f"of a text's forward pass each; writing a new question's row once: {extra['row_ms_per_question']:.2f} ms"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if args.update_card:
        update_card(args.student, result)


def any_question_cost(student, texts, n_new: int, min_seconds: float) -> dict:
    """Seconds per text with the student's own questions and with n_new held-out pool questions added (rows cached
    after the first call, as in `encode`); returns the extra cost per added question as a fraction of the
    own-questions time, and the one-time cost of writing the rows."""
    from distill.question_pool import question_pool_split

    new = question_pool_split()[1][:n_new]
    own = list(student.questions)

    def per_text(questions) -> float:
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < min_seconds:
            student.encode(texts, batch_size=32, questions=questions)
            runs += 1
        return (time.perf_counter() - start) / (runs * len(texts))

    start = time.perf_counter()
    student.encode(texts[:1], questions=own + new)  # writes and caches the new rows
    row_seconds = time.perf_counter() - start
    base, more = per_text(own), per_text(own + new)
    # Alternate once more and keep the smaller of each: the machine is shared, so noise only adds time.
    base, more = min(base, per_text(own)), min(more, per_text(own + new))
    return {
        "new_questions": len(new),
        "seconds_per_text_own_questions": base,
        "seconds_per_text_with_new_questions": more,
        "extra_question_fraction": max(more - base, 0.0) / len(new) / base,
        "row_ms_per_question": row_seconds / len(new) * 1000,
    }


CARD_HEADING = "## Speed and memory"


def update_card(student, result: dict) -> None:
    """Put the measured speed-up and memory into the checkpoint's README.md (replacing an older section)."""
    from qaemb_fast.embedder import default_checkpoint_path
    from training.train import replace_card_section

    card = Path(student or default_checkpoint_path()) / "README.md"
    section = (
        f"{CARD_HEADING}\n\nMeasured by `python bench/bench_student.py` (one run, {result['torch_threads']} threads of "
        f"{result['machine']['cpu_cores']}-core {result['machine']['cpu']} ({', '.join(result['machine']['cpu_flags'])}); "
        f"all {result['questions']} questions for the same {result['texts']} texts): student "
        f"{result['student_texts_per_s']:.1f} texts/s vs teacher ({result['teacher']}) "
        f"{result['teacher_texts_per_s']:.3f} texts/s, **{result['speedup']:,.0f}x**. The student process peaks at "
        f"{result['peak_rss_mb']:.0f} MB RSS while encoding ({result['loaded_rss_mb']:.0f} MB after loading).\n\n"
    )
    if "extra_question_fraction" in result:
        section = section.rstrip("\n") + (
            f" Asking {result['new_questions']} questions it was not trained on as well costs "
            f"{result['extra_question_fraction'] * 100:.2f} % of a text's forward pass per question (their rows are written "
            f"once, {result['row_ms_per_question']:.1f} ms per question, and cached).\n\n"
        )
    replace_card_section(card, CARD_HEADING, section)
    print(f"updated {card}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.bench_teacher's machine()
    main()
