"""The project's own gold labels on the default question set: 60 hand-written texts x 109 questions.

Written for this project by an annotator and never used for training (see data/README.md for the judging rule and
counts). One JSON object per line:

    {"id": "g001", "kind": "story-window", "text": "...", "yes": [questions answered yes], "ambiguous": [questions]}

Every question of the default set that is not in "yes" is a "no". "ambiguous" lists the pairs (yes or no) that a
careful reader could judge either way, so an evaluation can report with and without them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qaemb_fast import QuestionSet

GOLD_PATH = Path(__file__).parent / "data" / "gold_default_questions.jsonl"
KINDS = ("story-window", "sentence", "review", "news", "dialogue", "domain")


class GoldSetError(ValueError):
    """The gold file is malformed or names a question outside the default question set."""


def load_gold_records(path=None) -> list[dict]:
    """The raw records of the gold file, in file order."""
    path = Path(path) if path is not None else GOLD_PATH
    records = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise GoldSetError(f"{path}:{line_no}: not JSON ({e})") from e
            missing = {"id", "kind", "text", "yes", "ambiguous"} - set(record)
            if missing:
                raise GoldSetError(f"{path}:{line_no}: missing fields {sorted(missing)}")
            records.append(record)
    return records


def load_gold_set(path=None) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Texts, questions and gold labels.

    Returns (texts, questions, labels, ambiguous): texts (n_texts,) in file order; questions (n_questions,) the
    default question set in its order; labels (n_texts, n_questions) int8, 1 = yes; ambiguous (n_texts,
    n_questions) bool, True where the pair is marked ambiguous.
    """
    records = load_gold_records(path)
    questions = list(QuestionSet.default())
    column = {q: j for j, q in enumerate(questions)}
    labels = np.zeros((len(records), len(questions)), dtype=np.int8)
    ambiguous = np.zeros((len(records), len(questions)), dtype=bool)
    for i, record in enumerate(records):
        for field, target, value in (("yes", labels, 1), ("ambiguous", ambiguous, True)):
            for q in record[field]:
                if q not in column:
                    raise GoldSetError(f"{record['id']}: {field} names a question not in the default set: {q!r}")
                target[i, column[q]] = value
    return [r["text"] for r in records], questions, labels, ambiguous
