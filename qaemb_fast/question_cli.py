"""`qaemb-fast questions generate | select` and `qaemb-fast eval classify | export-texts`.

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
import json
import sys
from pathlib import Path

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

CLASSIFY_DESCRIPTION = """\
The paper's simple NLP tasks on real offline data (fetched from Debian packages on first use):
  food      food reviews, 5 stars vs. other (r-cran-modeldata small_fine_foods: 4,000 train / 1,000 test)
  fortunes  the topic of a fortune quote, 6 categories of the Debian `fortunes` package (seeded 70/30 split)
Each feature set (student / teacher QA answers, bag-of-words, tf-idf, MiniLM) feeds the same logistic regression
(C by 5-fold CV); accuracy and AUC on the test split, with bootstrap intervals, and the most predictive questions.

examples:
  qaemb-fast eval classify --task food --out results/food.json
  qaemb-fast eval export-texts --task food --max-texts 300 --out food300.jsonl
  qaemb-fast label --corpus food300.jsonl --out labels/food300
  qaemb-fast eval classify --task food --max-texts 300 --teacher-labels labels/food300 --out results/food300.json
"""


def register(sub) -> None:
    from distill.cli import teacher_model_args

    q = sub.add_parser("questions", help="make question sets: generate candidates with an LLM, select a sparse set")
    q.set_defaults(_parser=q)
    qs = q.add_subparsers(dest="questions_command", metavar="SUBCOMMAND")

    g = qs.add_parser(
        "generate",
        help="propose new yes/no questions with a teacher LLM from example texts",
        epilog=GENERATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    teacher_model_args(g)
    g.add_argument(
        "--examples",
        required=True,
        help="example texts: .txt (one per line) / .csv / .jsonl file, a folder, or builtin:NAME[:N[:SEED]]",
    )
    g.add_argument("--text-field", default="text", help="text column/key in .csv/.jsonl (default: text)")
    g.add_argument("--n", type=int, default=50, help="new questions wanted (default: %(default)s)")
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
    g.add_argument("--name", default="generated", help="name stored in the question-set file (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    g.add_argument(
        "--similarity",
        type=float,
        default=0.9,
        help="drop a proposal whose MiniLM cosine similarity to a kept question exceeds this (default: %(default)s)",
    )
    g.add_argument("--examples-per-prompt", type=int, default=4, help="example texts per prompt (default: 4)")
    g.add_argument("--per-prompt", type=int, default=15, help="questions asked for per prompt (default: 15)")
    g.add_argument("--max-rounds", type=int, default=None, help="prompts at most (default: 3 * n / per-prompt + 2)")
    g.add_argument("--max-new-tokens", type=int, default=400, help="generated tokens per prompt (default: 400)")
    g.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default: 0.8)")
    g.add_argument("--show-dropped", action="store_true", help="list every dropped proposal and why")
    g.set_defaults(func=_generate)

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
    s.add_argument("--l1-ratio", type=float, default=0.9, help="elastic-net L1 share (default: 0.9, the paper's)")
    s.add_argument("--name", default=None, help="name of the selected set (default: <source>-selected<K>)")
    s.add_argument("--report", default=None, help="also write the path, alpha and weights as JSON here")
    s.set_defaults(func=_select)

    b = qs.add_parser(
        "subset-labels",
        help="copy a labelled dataset keeping only some questions' answers (to train a student on a selected set)",
    )
    b.add_argument("--data", required=True, help="labelled-dataset folder (`qaemb-fast label` output)")
    b.add_argument("--questions", required=True, help="question-set file to keep (e.g. from `questions select`)")
    b.add_argument("--out", required=True, help="output labelled-dataset folder")
    b.set_defaults(func=_subset_labels)

    e = sub.add_parser("eval", help="evaluate embeddings on the paper's simple NLP tasks")
    e.set_defaults(_parser=e)
    es = e.add_subparsers(dest="eval_command", metavar="SUBCOMMAND")
    c = es.add_parser(
        "classify",
        help="logistic regression on student / teacher QA features vs. bag-of-words and MiniLM (accuracy, AUC)",
        description=CLASSIFY_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _task_args(c)
    c.add_argument("--student", default=None, help="student checkpoint folder (default: the shipped default student)")
    c.add_argument(
        "--teacher-labels",
        default=None,
        help="`qaemb-fast label` output folder with the teacher's answers for the task's texts, finished or not "
        "(an unfinished one restricts every model to the texts labelled so far; default: skip that row)",
    )
    c.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="which rows: student teacher bow tfidf minilm majority (default: all)",
    )
    c.add_argument(
        "--questions",
        default=None,
        help="QA models use only these questions (a question-set file, e.g. from `questions select`; default: all)",
    )
    c.add_argument("--out", required=True, help="results JSON file; the markdown table goes next to it (.md)")
    c.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32", help="student precision")
    c.add_argument("--top", type=int, default=10, help="most predictive questions listed per QA model (default 10)")
    c.set_defaults(func=_classify)

    x = es.add_parser(
        "export-texts",
        help="write a task's texts as corpus JSONL, to label them with the teacher (`qaemb-fast label --corpus`)",
    )
    _task_args(x)
    x.add_argument("--split", choices=("all", "train", "test"), default="all", help="which texts (default: all)")
    x.add_argument("--out", required=True, help="output .jsonl file ({text, doc_id, split, label} per line)")
    x.set_defaults(func=_export)


def _task_args(p) -> None:
    p.add_argument("--task", required=True, choices=("food", "fortunes"), help="food reviews or fortune topics")
    p.add_argument("--max-texts", type=int, default=None, help="a seeded subsample of this many texts (default: all)")
    p.add_argument("--seed", type=int, default=0, help="subsample / split / CV / bootstrap seed (default: 0)")


# ----------------------------------------------------------------------------------------------------------------


def _generate(args) -> int:
    from distill.corpus import load_corpus_spec
    from distill.question_generation import (
        GenerationConfig,
        QuestionGenerationError,
        generate_questions,
        result_question_set,
    )
    from distill.teacher import Teacher
    from qaemb_fast.sentence_embedding import SentenceEmbedder

    existing = None if args.existing == "none" else args.existing
    texts = [it.text for it in load_corpus_spec(args.examples, text_field=args.text_field)]
    teacher = Teacher.from_pretrained(
        args.teacher, questions=existing or "default", dtype=args.dtype, device=args.device
    )
    config = GenerationConfig(
        n=args.n,
        examples_per_prompt=args.examples_per_prompt,
        proposals_per_prompt=args.per_prompt,
        max_rounds=args.max_rounds,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=args.seed,
        similarity_threshold=args.similarity,
        name=args.name,
    )
    try:
        result = generate_questions(
            teacher.model, teacher.tokenizer, texts, config, existing=existing, embed=SentenceEmbedder().encode
        )
    except QuestionGenerationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    qs = result_question_set(result, existing if args.include_existing else None, name=args.name)
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


def load_features(path, questions=None):
    """(X (n, Q) float, question set, texts or None) from X.npy (+ questions file) or a labelled-dataset folder."""
    import numpy as np

    from qaemb_fast.questions import QuestionSet, as_question_set

    path = Path(path)
    if path.is_dir():
        from distill.labelled_dataset import load_labelled_dataset

        ds, _, qs = load_labelled_dataset(path)
        return np.asarray(ds["answers"], dtype=np.float64), qs, list(ds["text"])
    if path.suffix != ".npy":
        raise ValueError(f"--features must be a .npy file or a labelled-dataset folder, not {path}")
    X = np.load(path)
    sidecar = path.with_suffix(".questions.json")
    if questions is None and not sidecar.exists():
        raise ValueError(f"name the columns of {path}: pass --questions FILE (or put {sidecar.name} next to it)")
    qs = as_question_set(questions) if questions is not None else QuestionSet.load(sidecar)
    if X.ndim != 2 or X.shape[1] != len(qs):
        raise ValueError(f"{path} has shape {X.shape} but the question set has {len(qs)} questions")
    return X, qs, None


def load_targets(path, columns=None, texts=None):
    """(values (n,) or (n, T), column names) from .npy, .csv or .jsonl; a 'text' column is aligned to `texts`."""
    import numpy as np

    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False), None
    if path.suffix not in (".csv", ".jsonl"):
        raise ValueError(f"--targets must be .npy, .csv or .jsonl, not {path}")
    import pandas as pd

    df = pd.read_csv(path) if path.suffix == ".csv" else pd.read_json(path, lines=True, dtype=False)
    if columns is None:
        columns = (
            ["label"] if "label" in df.columns else [c for c in df.columns if c not in ("text", "doc_id", "split")]
        )
    missing = [c for c in columns if c not in df.columns]
    if missing or not columns:
        raise ValueError(f"{path}: target columns {missing or columns} not found; columns are {list(df.columns)}")
    if texts is not None and "text" in df.columns:
        lookup = dict(zip(df["text"].astype(str), range(len(df))))
        absent = [t for t in texts if t not in lookup]
        if absent:
            raise ValueError(f"{path}: {len(absent)} feature texts have no target row (first: {absent[0][:80]!r})")
        df = df.iloc[[lookup[t] for t in texts]]
    values = df[columns].to_numpy()
    return (values[:, 0] if len(columns) == 1 else values), columns


def _is_classes(y, kind: str) -> bool:
    import numpy as np

    if kind != "auto":
        return kind == "classes"
    if y.ndim != 1:
        return False
    if not np.issubdtype(y.dtype, np.number) or y.dtype == bool:
        return True
    return np.issubdtype(y.dtype, np.integer) and len(np.unique(y)) <= 50


def _select(args) -> int:
    import numpy as np

    from qaemb_fast.question_selection import one_hot, select_questions

    X, qs, texts = load_features(args.features, args.questions)
    y, _ = load_targets(args.targets, args.target_column, texts)
    if len(y) != len(X):
        raise SystemExit(f"error: {len(X)} feature rows but {len(y)} target rows")
    if _is_classes(y, args.target_type):
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


def subset_labels(data, questions, out):
    """Write a labelled dataset with only `questions`' answer columns (same rows); returns the output folder.
    No teacher call: the answers are the ones already labelled, so the subset costs seconds."""
    import numpy as np

    from distill.labelled_dataset import load_labelled_dataset, write_labelled_dataset
    from qaemb_fast.questions import as_question_set

    ds, prov, qs = load_labelled_dataset(data)
    keep = as_question_set(questions)
    idx = qs.indices(list(keep.questions))  # unknown questions raise with the closest known ones
    answers = np.asarray(ds["answers"], dtype=np.float32)[:, idx]
    prov = dict(prov, questions=list(keep.questions), question_set_name=keep.name, subset_of=qs.hash)
    return write_labelled_dataset(out, ds["text"], ds["doc_id"], answers, prov)


def _subset_labels(args) -> int:
    out = subset_labels(args.data, args.questions, args.out)
    print(f"wrote {out}: the answers to the questions of {args.questions}, for every text of {args.data}")
    return 0


def _classify(args) -> int:
    from qaemb_fast.classify_eval import MODELS, ClassifyConfig, run_classify, to_markdown

    config = ClassifyConfig(
        task=args.task,
        student=args.student,
        teacher_labels=args.teacher_labels,
        questions=args.questions,
        models=tuple(args.models or MODELS),
        max_texts=args.max_texts,
        seed=args.seed,
        precision=args.precision,
        top=args.top,
    )
    results = run_classify(config)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    md = to_markdown(results)
    out.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def _export(args) -> int:
    from qaemb_fast.classify_eval import export_task_texts, load_task

    task = load_task(args.task, args.max_texts, args.seed)
    n = export_task_texts(task, args.out, seed=args.seed, split=args.split)
    same = f"--task {args.task}" + (f" --max-texts {args.max_texts}" if args.max_texts else "") + f" --seed {args.seed}"
    print(f"wrote {n} texts of task {args.task!r} to {args.out}; label them with:")
    print(f"  qaemb-fast label --corpus {args.out} --out labels/{args.task} [--questions SET]")
    print(f"then: qaemb-fast eval classify {same} --teacher-labels labels/{args.task} --out results.json")
    return 0
