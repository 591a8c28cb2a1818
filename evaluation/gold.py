"""The project's own gold labels on the default question set (60 hand-written texts x 109 questions), and
`qaemb-fast eval gold`: how right are the teacher's or a student's answers on them?

Written for this project by an annotator and never used for training (see data/README.md for the judging rule and
counts). One JSON object per line:

    {"id": "g001", "kind": "story-window", "text": "...", "yes": [questions answered yes], "ambiguous": [questions]}

Every question of the default set that is not in "yes" is a "no". "ambiguous" lists the pairs (yes or no) that a
careful reader could judge either way, so an evaluation can report with and without them.

The evaluation (`run_gold`) scores answers at the decision P(yes) > 0.5 with the D3 metrics (evaluation/d3.py:
ROC-AUC, balanced accuracy, accuracy next to the majority class's, yes-rate next to the true one), two ways:
pooled over all (text, question) pairs, which also punishes a bias that differs between questions, and averaged
over questions (ROC-AUC and balanced accuracy over the questions that have both classes; the others are counted).
Each with and without the ambiguous pairs. Answerers: the teacher, read from a labelling folder made on the gold
texts (`--export-texts FILE`, then `qaemb-fast label --corpus FILE`; an unfinished job scores the texts labelled
so far, and says how many), or a student checkpoint, which answers the questions directly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qaemb_fast import QuestionSet
from qaemb_fast.texts import read_jsonl

GOLD_PATH = Path(__file__).parent / "data" / "gold_default_questions.jsonl"
KINDS = ("story-window", "sentence", "review", "news", "dialogue", "domain")


class GoldSetError(ValueError):
    """The gold file is malformed or names a question outside the default question set."""


def load_gold_records(path=None) -> list[dict]:
    """The raw records of the gold file, in file order."""
    path = Path(path) if path is not None else GOLD_PATH
    records = read_jsonl(path)  # bad JSON or not UTF-8: an error naming the file and line
    for k, record in enumerate(records, 1):
        missing = {"id", "kind", "text", "yes", "ambiguous"} - set(record)
        if missing:
            raise GoldSetError(f"{path}: record {k} (id {record.get('id')!r}): missing fields {sorted(missing)}")
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
        for key, target, value in (("yes", labels, 1), ("ambiguous", ambiguous, True)):
            for q in record[key]:
                if q not in column:
                    raise GoldSetError(f"{record['id']}: {key} names a question not in the default set: {q!r}")
                target[i, column[q]] = value
    return [r["text"] for r in records], questions, labels, ambiguous


# ---------------------------------------------------------------------------------------------------------------- eval


@dataclass
class GoldConfig:
    teacher_labels: str | None = None  # labelling folder made on the gold texts (default: score a student)
    checkpoint: str | None = None  # student checkpoint folder (default: the shipped student)
    gold: str | None = None  # gold file (default: the packaged evaluation/data/gold_default_questions.jsonl)
    export_texts: str | None = None  # do not score: write the gold texts to this .jsonl file, to label them
    out: str | None = None  # write results.md and results.json here
    batch_size: int = 32  # student batch size


SCORES = ("pooled", "pooled_unambiguous", "per_question", "per_question_unambiguous")


def answers_from_labels(folder, texts, questions, raw: bool = False):
    """Teacher answers on the gold pairs from a labelling folder (finished or not).

    Returns (p_yes (m, k), rows (m,) indices into texts, cols (k,) indices into questions): the labelled texts and
    the questions the folder answers. raw: the teacher's raw P(yes) rather than the folder's calibrated answers.
    """
    import inspect

    from distill.label import answers_by_text

    read = answers_by_text
    table = read(folder, raw=True) if raw and "raw" in inspect.signature(read).parameters else read(folder)
    rows = np.array([i for i, t in enumerate(texts) if t.strip() in table], dtype=np.int64)
    cols = np.array([j for j, q in enumerate(questions) if q in table.questions], dtype=np.int64)
    if rows.size == 0:
        raise GoldSetError(f"{folder}: none of the {len(texts)} gold texts is labelled yet")
    if cols.size == 0:
        raise GoldSetError(f"{folder}: answers none of the gold questions (another question set?)")
    at = [table.questions.index(questions[j]) for j in cols]
    return np.stack([table[texts[i].strip()][at] for i in rows]), rows, cols


def score_per_question(p_yes, labels, keep) -> tuple[dict, list[dict]]:
    """Mean over questions of the D3 metrics, and one row per question. p_yes, labels, keep (n, Q); keep: which
    pairs count. ROC-AUC and balanced accuracy are averaged over the questions with both classes among the kept
    pairs; the others are counted in n_single_class. Questions with no kept pair are left out."""
    from evaluation.d3 import METRICS, score_answers

    rows = [score_answers(p_yes[keep[:, j], j], labels[keep[:, j], j]) for j in range(p_yes.shape[1])]
    rows = [dict(r, question=j) for j, r in enumerate(rows) if r["n"] > 0]
    two_class = [r for r in rows if 0 < r["true_yes_rate"] < 1]

    def average(m):
        over = two_class if m in ("roc_auc", "balanced_accuracy") else rows
        return float(np.mean([r[m] for r in over])) if over else float("nan")

    mean = {m: average(m) for m in METRICS}
    return dict(mean, n=int(keep.sum()), n_questions=len(rows), n_single_class=len(rows) - len(two_class)), rows


def score_gold(p_yes, labels, ambiguous) -> dict:
    """The four summaries of SCORES for answers p_yes (n, Q) against labels (n, Q), each a dict of the D3 metrics
    (evaluation.d3.score_answers) plus counts, and the per-question rows (all pairs) under "questions"."""
    from evaluation.d3 import score_answers

    p_yes, labels, ambiguous = np.asarray(p_yes, dtype=np.float64), np.asarray(labels), np.asarray(ambiguous, bool)
    if not p_yes.shape == labels.shape == ambiguous.shape:
        raise GoldSetError(f"answers {p_yes.shape}, labels {labels.shape}, ambiguous {ambiguous.shape} differ")
    everything, clear = np.ones_like(ambiguous), ~ambiguous
    out = {"pooled": score_answers(p_yes.ravel(), labels.ravel())}
    out["pooled_unambiguous"] = score_answers(p_yes[clear], labels[clear])
    out["per_question"], out["questions"] = score_per_question(p_yes, labels, everything)
    out["per_question_unambiguous"], _ = score_per_question(p_yes, labels, clear)
    return out


def scores_markdown(scores: dict) -> list[str]:
    """The table of the four summaries (one row each)."""
    from evaluation.d3 import METRICS

    names = {
        "pooled": "pooled, all pairs",
        "pooled_unambiguous": "pooled, without ambiguous pairs",
        "per_question": "mean over questions, all pairs",
        "per_question_unambiguous": "mean over questions, without ambiguous pairs",
    }
    lines = [
        "| | pairs | ROC-AUC | bal. acc. | acc. | majority acc. | yes-rate | true yes-rate |",
        "|---|" + "---:|" * 7,
    ]
    for key in SCORES:
        s = scores[key]
        n = f"{s['n']}" + (f" ({s['n_single_class']} single-class q. skipped)" if s.get("n_single_class") else "")
        lines.append(f"| {names[key]} | {n} | " + " | ".join(f"{s[m]:.3f}" for m in METRICS) + " |")
    return lines


@dataclass
class GoldResult:
    scores: dict  # score_gold's output
    answerer: str
    n_texts: int  # gold texts scored
    n_texts_total: int
    questions: list[str]  # the questions scored, in the order of scores["questions"]
    config: dict = field(default_factory=dict)

    def markdown(self, worst: int = 10) -> str:
        q = len(self.questions)
        lines = [
            f"### Gold labels on the default questions: {self.answerer}",
            "",
            f"{self.n_texts} of {self.n_texts_total} gold texts x {q} questions; decision P(yes) > 0.5.",
            "",
            *scores_markdown(self.scores),
            "",
            f"Questions with the most false yeses (of {self.n_texts} texts):",
            "",
            "| question | yes-rate | true yes-rate | ROC-AUC |",
            "|---|---:|---:|---:|",
        ]
        rows = sorted(self.scores["questions"], key=lambda r: r["true_yes_rate"] - r["yes_rate"])[:worst]
        for r in rows:
            lines.append(
                f"| {self.questions[r['question']]} | {r['yes_rate']:.2f} | {r['true_yes_rate']:.2f} | {r['roc_auc']:.3f} |"
            )
        return "\n".join(lines) + "\n"


def export_gold_texts(path, texts) -> Path:
    """Write the gold texts as corpus JSONL ({"text": ...} per line, file order), to label them with the teacher."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    return path


def run_gold(config: GoldConfig) -> GoldResult | None:
    """Score teacher answers (from a labelling folder) or a student checkpoint on the gold set; write results."""
    texts, questions, labels, ambiguous = load_gold_set(config.gold)
    if config.export_texts:
        path = export_gold_texts(config.export_texts, texts)
        print(f"wrote the {len(texts)} gold texts to {path}; label them (never train on them) with")
        print(f"  qaemb-fast label --corpus {path} --out LABELS, then: qaemb-fast eval gold --teacher-labels LABELS")
        return None
    if config.teacher_labels:
        if not Path(config.teacher_labels).is_dir():
            raise FileNotFoundError(f"--teacher-labels {config.teacher_labels}: no such folder")
        p_yes, rows, cols = answers_from_labels(config.teacher_labels, texts, questions)
        answerer = f"teacher answers in {config.teacher_labels}"
    else:
        from qaemb_fast.embedder import QAEmbedder

        student = QAEmbedder.from_pretrained(config.checkpoint)
        known = set(student.questions)
        cols = np.array([j for j, q in enumerate(questions) if q in known], dtype=np.int64)
        if cols.size == 0:
            raise GoldSetError(f"the student {config.checkpoint} knows none of the gold questions")
        rows = np.arange(len(texts))
        p_yes = student.encode(texts, questions=[questions[j] for j in cols], batch_size=config.batch_size)
        answerer = f"student {config.checkpoint or 'checkpoints/default'}"
    if cols.size < len(questions):
        answerer += f" ({cols.size} of {len(questions)} questions)"
    pick = np.ix_(rows, cols)
    scores = score_gold(p_yes, labels[pick], ambiguous[pick])
    result = GoldResult(scores, answerer, len(rows), len(texts), [questions[j] for j in cols], asdict(config))
    if config.out:
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.md").write_text(result.markdown())
        payload = {"answerer": answerer, "n_texts": len(rows), "n_texts_total": len(texts)}
        payload |= {"questions": result.questions, "scores": scores, "config": result.config}
        (out / "results.json").write_text(json.dumps(payload, indent=1) + "\n")
    return result
