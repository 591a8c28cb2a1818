"""`qaemb-fast questions generate | select | subset-labels`: make a question set for your own domain.

The loop a user follows to make a question set for their own domain:

    qaemb-fast questions generate --examples texts.jsonl --n 50 --out candidates.json --include-existing
    qaemb-fast label --questions candidates.json --corpus texts.jsonl --out labels/cand
    qaemb-fast questions select --features labels/cand --targets labels.csv --k 29 --out selected.json
    qaemb-fast questions subset-labels --data labels/cand --questions selected.json --out labels/selected
    qaemb-fast train --data labels/selected --out checkpoints/selected
    (or keep a student trained on the full set: QAEmbedder.encode(texts, questions=selected.questions))
"""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path

from distill.question_generation import GenerationConfig
from evaluation.question_selection import select_questions
from qaemb_cli.options import add_command_group, add_config_options, config_from_args, require_path
from qaemb_cli.teacher import add_teacher_options

GENERATE_EPILOG = """\
examples:
  qaemb-fast questions generate --examples reviews.jsonl --n 50 --out new.json
  qaemb-fast questions generate --examples builtin:wordnet:200 --n 20 --out new.json --include-existing

Proposals are parsed from the model's free text, cleaned ('the text' -> 'the input'), and dropped when they are
not yes/no questions about the input, or near-duplicates (same normalised text, or MiniLM cosine similarity above
--similarity) of the existing set or of each other. A teacher too weak to write questions gets an error that says so.
"""

SELECT_EPILOG = """\
examples:
  # a labelled dataset (its answers and questions) and one class label per text (csv column 'label')
  qaemb-fast questions select --features labels/cand --targets labels.csv --k 29 --out selected.json
  # arrays: X (n, Q) from `qaemb-fast embed --output X.npy` (X.questions.json names the columns), Y (n, T) voxels
  qaemb-fast questions select --features X.npy --targets Y.npy --k 29 --out selected.json

A student trained on the full set answers the subset without retraining:
  QAEmbedder.from_pretrained(ckpt).encode(texts, questions=QuestionSet.load("selected.json").questions)
"""


def register(sub) -> None:
    qs = add_command_group(
        sub,
        "questions",
        help="make question sets: generate candidates with an LLM, select a sparse set",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    g = qs.add_parser(
        "generate",
        help="propose new yes/no questions with a teacher LLM from example texts",
        epilog=GENERATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_teacher_options(g, prompt=False)
    g.add_argument(
        "--examples",
        required=True,
        help="example texts: .txt (one per line) / .csv / .jsonl file, a folder, or builtin:NAME[:N[:SEED]]",
    )
    g.add_argument("--text-field", default="text", help="text column/key in .csv/.jsonl (default: text)")
    g.add_argument("--out", required=True, help="output question-set JSON file")
    g.add_argument(
        "--existing",
        default="default",
        help="question set the new ones must differ from: a file, 'default', or 'none' (default: %(default)s)",
    )
    g.add_argument(
        "--include-existing",
        action="store_true",
        help="write the existing questions followed by the new ones (a candidate set to label), not only the new",
    )
    g.add_argument("--show-dropped", action="store_true", help="list every dropped proposal and why")
    add_config_options(g, GenerationConfig, overrides={
        "proposals_per_prompt": {"flags": ["--per-prompt", "--proposals-per-prompt"]},
        "similarity_threshold": {"flags": ["--similarity", "--similarity-threshold"]},
    })  # fmt: skip
    g.set_defaults(func=cmd_questions_generate)

    s = qs.add_parser(
        "select",
        help="keep the K questions that matter: multi-task elastic-net path over QA features and targets",
        epilog=SELECT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument(
        "--features",
        required=True,
        help="QA features: X.npy (n, Q) or a labelled-dataset folder (`qaemb-fast label` output)",
    )
    s.add_argument(
        "--targets",
        required=True,
        help="Y.npy (n,) or (n, T), or a .csv/.jsonl with one row per text (a 'text' column aligns rows by text)",
    )
    s.add_argument("--k", type=int, default=29, help="questions to keep (default: %(default)s, as in the paper)")
    s.add_argument("--out", required=True, help="output question-set JSON file")
    s.add_argument(
        "--questions",
        default=None,
        help="question set naming the columns of X.npy (default: X.questions.json next to it); "
        "ignored for a labelled-dataset folder, which names its own",
    )
    s.add_argument(
        "--target-column",
        action="append",
        default=None,
        help="column(s) to predict (repeatable; default: 'label' if present, else all but text/doc_id/split)",
    )
    s.add_argument(
        "--target-type",
        choices=("auto", "classes", "regression"),
        default="auto",
        help="classes become one-hot targets; auto: one non-numeric or integer column with <= 50 values is classes",
    )
    l1 = inspect.signature(select_questions).parameters["l1_ratio"].default
    s.add_argument("--l1-ratio", type=float, default=l1, help=f"elastic-net L1 share (default: {l1}, the paper's)")
    s.add_argument("--name", default=None, help="name of the selected set (default: <source>-selected<K>)")
    s.add_argument("--report", default=None, help="also write the path, alpha and weights as JSON here")
    s.set_defaults(func=cmd_questions_select)

    b = qs.add_parser(
        "subset-labels",
        help="copy a labelled dataset keeping only some questions' answers (to train a student on a selected set)",
    )
    b.add_argument("--data", required=True, help="labelled-dataset folder (`qaemb-fast label` output)")
    b.add_argument("--questions", required=True, help="question-set file to keep (e.g. from `questions select`)")
    b.add_argument("--out", required=True, help="output labelled-dataset folder")
    b.set_defaults(func=cmd_questions_subset_labels)


# ----------------------------------------------------------------------------------------------------------------


def cmd_questions_generate(args) -> int:
    from distill.corpus import load_corpus_spec
    from qaemb_fast.questions import as_question_set

    existing = None if args.existing == "none" else args.existing
    if existing is not None:
        as_question_set(existing)  # a bad question-set file fails before the teacher loads
    texts = [it.text for it in load_corpus_spec(args.examples, text_field=args.text_field)]
    from distill.question_generation import generate_questions, result_question_set
    from distill.teacher import Teacher
    from qaemb_fast.sentence_embedding import SentenceEmbedder

    teacher = Teacher.from_pretrained(
        args.teacher, questions=existing or "default", dtype=args.dtype, device=args.device, engine="torch"
    )
    config = config_from_args(args, GenerationConfig)
    result = generate_questions(
        teacher.model, teacher.tokenizer, texts, config, existing=existing, embed=SentenceEmbedder().encode
    )
    qs = result_question_set(result, existing if args.include_existing else None, name=config.name)
    qs.save(args.out)
    print(
        f"kept {len(result.questions)} new questions from {result.rounds} prompts "
        f"({len(result.dropped)} proposals dropped); wrote {len(qs)} questions to {args.out}"
    )
    for q in result.questions:
        print(f"  + {q}")
    if args.show_dropped:
        for q, why in result.dropped:
            print(f"  - {q!r}: {why}")
    return 0


def cmd_questions_select(args) -> int:
    import numpy as np

    from evaluation.question_selection import is_classes, load_features, load_targets, one_hot

    require_path(args.features, "--features")
    require_path(args.targets, "--targets", "file")
    X, qs, texts = load_features(args.features, args.questions)
    y, _ = load_targets(args.targets, args.target_column, texts)
    if len(y) != len(X):
        raise ValueError(f"{len(X)} feature rows but {len(y)} target rows")
    if is_classes(y, args.target_type):
        Y, classes = one_hot(y)
        what = f"{len(classes)} classes (one-hot)"
    else:
        Y = np.asarray(y, dtype=np.float64)
        what = f"{1 if Y.ndim == 1 else Y.shape[1]} real target(s)"
    result = select_questions(X, Y, args.k, l1_ratio=args.l1_ratio)
    subset = qs.subset(result.indices, name=args.name or f"{qs.name}-selected{len(result.indices)}")
    subset.save(args.out)
    print(
        f"selected {len(subset)} of {len(qs)} questions for {what} from {len(X)} texts "
        f"(alpha {result.alpha:.4g}, {result.n_nonzero} nonzero); wrote {args.out}"
    )
    for q, w in zip(subset.questions, result.weight_norms):
        print(f"  {w:.4f}  {q}")
    if args.report:
        Path(args.report).write_text(json.dumps(result.to_dict(list(qs.questions)), indent=1) + "\n")
    return 0


def cmd_questions_subset_labels(args) -> int:
    from evaluation.question_selection import subset_labels

    require_path(args.data, "--data", "folder")
    out = subset_labels(args.data, args.questions, args.out)
    print(f"wrote {out}: the answers to the questions of {args.questions}, for every text of {args.data}")
    return 0
