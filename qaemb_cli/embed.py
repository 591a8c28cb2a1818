"""`qaemb-fast embed`: answer every question for some texts with a student checkpoint.

    qaemb-fast embed "I ate a sandwich." "It rained all day."       # prints the top answers per text
    qaemb-fast embed --input texts.jsonl --output emb.parquet         # a whole file, with a progress bar

Inputs (read like `--corpus` of `qaemb-fast label`): .txt (one text per line; blank lines skipped), .jsonl (a
"text" field per line), .csv (a "text" column); rows with an empty text are skipped with a warning.
Outputs: .npy ((n, Q) float32, plus FILE.questions.json naming the columns) or .parquet (a "text" column and one
float32 column per question, named by the question).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qaemb_cli.options import UsageError, require_path
from qaemb_fast.device import PRECISIONS

OUTPUT_SUFFIXES = (".npy", ".parquet")


def register(sub) -> None:
    p = sub.add_parser(
        "embed",
        help="embed texts with a student: print top answers, or write an (n, Q) array",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("texts", nargs="*", help="texts to embed (or use --input)")
    p.add_argument(
        "--checkpoint", default=None, help="student checkpoint folder (default: the shipped default student)"
    )
    p.add_argument(
        "--input",
        default=None,
        help="file of texts: .txt (one per line), .jsonl or .csv with a text field, or a folder",
    )
    p.add_argument("--text-field", default="text", help="field/column holding the text in .jsonl/.csv (default: text)")
    p.add_argument("--output", default=None, help="write the answers to .npy or .parquet instead of printing them")
    p.add_argument(
        "--questions",
        nargs="+",
        default=None,
        help="answer these questions: texts (any question, with a question-head student), indices of trained "
        "questions, or one question-set file (.json/.txt)",
    )
    p.add_argument("--binary", action="store_true", help="0/1 answers (P(yes) > 0.5) instead of P(yes)")
    p.add_argument("--top-k", type=int, default=5, help="answers printed per text (default: 5)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="tokens read per text; longer texts are cut with a warning (default: the checkpoint's training length)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto = bf16 where the hardware runs it natively, else fp32 (default: auto)",
    )
    p.set_defaults(func=cmd_embed, _parser=p)


def write_output(path, array, texts, questions) -> None:
    """(n, Q) answers -> .npy (+ .questions.json) or .parquet (text + one column per question)."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        from qaemb_fast.questions import QuestionSet

        np.save(path, array.astype(np.float32))
        QuestionSet(tuple(questions), name="columns of " + path.name).save(path.with_suffix(".questions.json"))
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"text": pa.array(texts, type=pa.string())}
    columns.update({q: pa.array(array[:, k], type=pa.float32()) for k, q in enumerate(questions)})
    pq.write_table(pa.table(columns), path)


def parse_questions(values):
    """--questions values -> None, a question-set file's questions, or a list of texts/indices."""
    if not values:
        return None
    if len(values) == 1 and Path(values[0]).suffix in (".json", ".txt") and Path(values[0]).is_file():
        from qaemb_fast.questions import QuestionSet

        return list(QuestionSet.load(values[0]).questions)
    return [int(v) if v.lstrip("-").isdigit() else v for v in values]


def cmd_embed(args) -> int:
    if args.output and Path(args.output).suffix not in OUTPUT_SUFFIXES:
        raise UsageError(f"--output must end in one of {OUTPUT_SUFFIXES}, not {args.output!r}")
    if args.top_k < 1:
        raise UsageError("--top-k must be >= 1")
    # Inputs first, before torch is imported: a wrong path fails in well under a second.
    require_path(args.checkpoint, "--checkpoint", "folder")
    texts = list(args.texts)
    if args.input:
        from distill.corpus import read_texts

        require_path(args.input, "--input")
        texts += read_texts(args.input, args.text_field)
    if not texts:
        raise UsageError("give texts to embed, or --input FILE")
    selected = parse_questions(args.questions)
    from qaemb_fast.embedder import QAEmbedder

    emb = QAEmbedder.from_pretrained(
        args.checkpoint, device=args.device, precision=args.precision, max_length=args.max_length
    )
    # Indices name trained questions; any other string is asked as it is (a student with a question head answers
    # it, one without says which trained questions are closest in meaning).
    try:
        questions = (
            emb.questions if selected is None else [emb.questions[q] if isinstance(q, int) else q for q in selected]
        )
    except IndexError:
        raise UsageError(
            f"--questions: a question index is out of range (the student has {len(emb.questions)})"
        ) from None
    probs = emb.encode(
        texts, batch_size=args.batch_size, show_progress_bar=bool(args.input) or None, questions=questions
    )
    answers = (probs > 0.5).astype("float32") if args.binary else probs
    if args.output:
        write_output(args.output, answers, texts, questions)
        print(f"wrote {answers.shape[0]} x {answers.shape[1]} answers to {args.output}", file=sys.stderr)
        return 0
    for text, p in zip(texts, probs):
        print(text if len(text) <= 100 else text[:97] + "...")
        for k in (-p).argsort(kind="stable")[: args.top_k]:
            shown = ("yes" if p[k] > 0.5 else "no") if args.binary else f"{p[k]:.3f}"
            print(f"  {shown:>5}  {questions[k]}")
    return 0
