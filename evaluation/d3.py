"""D3 gold-label benchmark: how often are the answers right? (Zhong et al. 2021; the paper's "simple NLP tasks")

Each D3 task is one yes/no property of a text with gold labels (`<data>/tasks.json` + `<data>/<task>.jsonl`, see
the shared data README). For every task we ask its question about every text and compare with the gold labels:

    ROC-AUC             ranking quality, independent of any threshold (scikit-learn `roc_auc_score`)
    balanced accuracy   mean recall of yes and no at the decision P(yes) > 0.5
    accuracy            at P(yes) > 0.5, next to the majority-class accuracy (the floor any answerer must beat)
    yes-rate            predicted share of yes at P(yes) > 0.5, next to the true share

Answerers:
- a student checkpoint (`QAEmbedder`), or anything with `.encode(texts, questions=[q])`; a question it cannot
  answer gives a "not answerable" row, not a crash;
- the teacher, through ordinary resumable labelling jobs: `export_d3_texts` writes, per task, the texts in a
  seeded random order and a one-question question set; `qaemb-fast label` answers them (interrupt any time, the
  same command resumes); `--teacher-labels` reads the answers so far. A task labelled only in part is scored on
  the labelled prefix of that seeded order (an unbiased random subsample) and the table says how many texts.

The D3 texts are evaluation data only: never train a model that ships on them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qaemb_fast.texts import read_jsonl

TEXTS_FILE, QUESTIONS_FILE, ANSWERS_DIR = "texts.jsonl", "questions.json", "teacher-answers"


class D3DataError(ValueError):
    """The D3 folder or a task in it is missing or malformed."""


@dataclass
class D3Task:
    """One task: its question and gold-labelled texts (labels: (n,) int, 1 = yes)."""

    name: str
    description: str
    question: str
    texts: list[str]
    labels: np.ndarray


@dataclass
class D3Config:
    data: str = ""  # the D3 folder (tasks.json + <task>.jsonl), e.g. ../shared/data/d3
    checkpoint: str | None = None  # student checkpoint folder (default: the shipped student)
    # folder written by `eval d3 --export-texts`, with labelling jobs inside (with --checkpoint: side by side)
    teacher_labels: str | None = None
    export_texts: str | None = None  # do not score: write each task's texts + question here, to label them
    tasks: tuple[str, ...] = ()  # task names to run (default: all in tasks.json)
    out: str | None = None  # write results.md and results.json here
    batch_size: int = 32  # student batch size
    seed: int = 0  # the order of the exported texts (the subsample when labelling stops early)


def load_d3_tasks(data, tasks=()) -> list[D3Task]:
    """Read tasks.json and each task's JSONL. tasks: names to keep (default all), in tasks.json order."""
    root = Path(data)
    index_path = root / "tasks.json"
    if not index_path.is_file():
        raise D3DataError(f"{root}: no tasks.json (expected the D3 folder: tasks.json + <task>.jsonl)")
    index = json.loads(index_path.read_text())
    known = [t["task"] for t in index]
    unknown = sorted(set(tasks) - set(known))
    if unknown:
        raise D3DataError(f"unknown D3 task(s) {unknown}; {index_path} has {len(known)}: {', '.join(known)}")
    out = []
    for entry in index:
        if tasks and entry["task"] not in tasks:
            continue
        path = root / f"{entry['task']}.jsonl"
        if not path.is_file():
            raise D3DataError(f"{path}: missing (listed in {index_path})")
        rows = read_jsonl(path)
        texts = [r["text"] for r in rows]
        labels = np.array([int(r["label"]) for r in rows])
        if not texts or set(np.unique(labels)) - {0, 1}:
            raise D3DataError(f"{path}: need rows of {{'text', 'label' (0 or 1)}}")
        out.append(D3Task(entry["task"], entry.get("description", ""), entry["question"], texts, labels))
    return out


def seeded_order(n: int, seed: int, task: str) -> np.ndarray:
    """The order in which a task's texts are exported: a permutation fixed by (seed, task name)."""
    salt = int.from_bytes(task.encode(), "little") % (2**32)
    return np.random.default_rng([seed, salt]).permutation(n)


def export_d3_texts(tasks: list[D3Task], out, seed: int = 0) -> list[Path]:
    """Per task, write OUT/<task>/texts.jsonl (seeded random order) and questions.json (its one question).

    Returns the task folders. Label each with
    `qaemb-fast label --corpus OUT/<task>/texts.jsonl --questions OUT/<task>/questions.json --out OUT/<task>/teacher-answers
    --calibration none` (raw answers; `qaemb-fast eval calibration` applies each calibration to them).
    """
    from qaemb_fast.questions import QuestionSet

    folders = []
    for task in tasks:
        folder = Path(out) / task.name
        folder.mkdir(parents=True, exist_ok=True)
        order = seeded_order(len(task.texts), seed, task.name)
        lines = [json.dumps({"text": task.texts[i]}, ensure_ascii=False) for i in order]
        (folder / TEXTS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
        QuestionSet([task.question], name=f"d3-{task.name}", version="1").save(folder / QUESTIONS_FILE)
        folders.append(folder)
    return folders


def score_answers(p_yes: np.ndarray, labels: np.ndarray) -> dict:
    """Gold-label metrics of one task's P(yes) (n,) against labels (n,) in {0, 1}; decision = P(yes) > 0.5."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    p_yes, labels = np.asarray(p_yes, dtype=np.float64), np.asarray(labels).astype(int)
    pred = (p_yes > 0.5).astype(int)
    true_rate = float(labels.mean())
    return {
        "n": int(len(labels)),
        "roc_auc": float(roc_auc_score(labels, p_yes)) if 0 < true_rate < 1 else float("nan"),
        # undefined with one class (sklearn would warn and return the recall of that class)
        "balanced_accuracy": float(balanced_accuracy_score(labels, pred)) if 0 < true_rate < 1 else float("nan"),
        "accuracy": float(accuracy_score(labels, pred)),
        "majority_accuracy": max(true_rate, 1 - true_rate),
        "yes_rate": float(pred.mean()),
        "true_yes_rate": true_rate,
    }


def answer_with_encoder(encoder, task: D3Task, batch_size: int = 32) -> np.ndarray | None:
    """P(yes) (n,) of `encoder` for the task's question on its texts; None if it cannot answer that question."""
    try:
        return np.asarray(encoder.encode(task.texts, questions=[task.question], batch_size=batch_size))[:, 0]
    except KeyError:  # QuestionSet.indices: a question the checkpoint was not trained on
        return None


def answer_from_labels(folder, task: D3Task) -> tuple[np.ndarray, np.ndarray] | None:
    """(P(yes) of the labelled texts, their indices in task.texts) from a task's labelling folder, or None."""
    from distill.label import answers_by_text

    labelled = Path(folder) / task.name / ANSWERS_DIR
    if not labelled.is_dir():
        return None
    table = answers_by_text(labelled)
    keep = np.array([i for i, t in enumerate(task.texts) if t.strip() in table], dtype=np.int64)
    if keep.size == 0:
        return None
    return np.array([float(table[task.texts[i].strip()][0]) for i in keep]), keep


def evaluate(tasks: list[D3Task], answer) -> list[dict]:
    """One row per task. answer(task) -> P(yes) (n,), or (P(yes) (m,), indices (m,)) for a subset, or None."""
    rows = []
    for task in tasks:
        got = answer(task)
        row = {"task": task.name, "question": task.question, "n_total": len(task.texts)}
        if got is None:
            rows.append(dict(row, answerable=False))
            continue
        p_yes, idx = got if isinstance(got, tuple) else (got, np.arange(len(task.texts)))
        rows.append(dict(row, answerable=True, **score_answers(p_yes, task.labels[idx])))
    return rows


METRICS = ("roc_auc", "balanced_accuracy", "accuracy", "majority_accuracy", "yes_rate", "true_yes_rate")


def summarize(rows: list[dict]) -> dict:
    """Means over the answerable tasks (ROC-AUC over tasks where it is defined), and the counts."""
    ok = [r for r in rows if r.get("answerable")]
    mean = {m: float(np.nanmean([r[m] for r in ok])) if ok else float("nan") for m in METRICS}
    beats = sum(r["accuracy"] >= r["majority_accuracy"] for r in ok)
    return dict(mean, n_tasks=len(rows), n_answerable=len(ok), n_at_least_majority=beats)


def to_markdown(rows: list[dict], summary: dict, title: str) -> str:
    head = "| task | question | n | ROC-AUC | bal. acc. | acc. | majority acc. | yes-rate | true yes-rate |"
    lines = [f"### {title}", "", head, "|" + "---|" * 2 + "---:|" * 7]
    for r in rows:
        if not r.get("answerable"):
            lines.append(f"| {r['task']} | {r['question']} | {r['n_total']} | not answerable |||||| |")
            continue
        n = f"{r['n']}" if r["n"] == r["n_total"] else f"{r['n']} of {r['n_total']}"
        vals = " | ".join(f"{r[m]:.3f}" for m in METRICS)
        lines.append(f"| {r['task']} | {r['question']} | {n} | {vals} |")
    s = summary
    lines.append(
        f"| **mean** ({s['n_answerable']} of {s['n_tasks']} tasks) | | | "
        + " | ".join(f"**{s[m]:.3f}**" for m in METRICS)
        + " |"
    )
    lines += ["", f"Accuracy at least the majority class's on {s['n_at_least_majority']} of {s['n_answerable']} tasks."]
    return "\n".join(lines) + "\n"


@dataclass
class D3Result:
    rows: list[dict]
    summary: dict
    answerer: str
    config: dict = field(default_factory=dict)

    def markdown(self) -> str:
        return to_markdown(self.rows, self.summary, f"D3 gold labels: {self.answerer}")


@dataclass
class SideBySide:
    """Teacher and student on the same D3 texts (those the teacher answered), and the student on all texts."""

    teacher: D3Result
    student_same: D3Result
    student_all: D3Result

    def markdown(self) -> str:
        t, s, a = self.teacher, self.student_same, self.student_all
        lines = [
            f"### D3 gold labels: {s.answerer} next to {t.answerer}",
            "",
            "ROC-AUC and balanced accuracy against the gold labels, on the texts the teacher answered (and the "
            "student on every text of the task).",
            "",
            "| task | question | texts | teacher ROC-AUC | student ROC-AUC | teacher bal. acc. | student bal. acc. | "
            "student ROC-AUC, all texts (n) |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for rt, rs, ra in zip(t.rows, s.rows, a.rows):
            if not (rt.get("answerable") and rs.get("answerable")):
                lines.append(f"| {rt['task']} | {rt['question']} | | not answerable |||||")
                continue
            lines.append(
                f"| {rt['task']} | {rt['question']} | {rt['n']} | {rt['roc_auc']:.3f} | {rs['roc_auc']:.3f} | "
                f"{rt['balanced_accuracy']:.3f} | {rs['balanced_accuracy']:.3f} | {ra['roc_auc']:.3f} ({ra['n']}) |"
            )
        ts, ss, sa = t.summary, s.summary, a.summary
        lines.append(
            f"| **mean** ({ss['n_answerable']} of {ss['n_tasks']} tasks) | | | **{ts['roc_auc']:.3f}** | "
            f"**{ss['roc_auc']:.3f}** | **{ts['balanced_accuracy']:.3f}** | **{ss['balanced_accuracy']:.3f}** | "
            f"**{sa['roc_auc']:.3f}** |"
        )
        return "\n".join(lines) + "\n\n" + t.markdown() + "\n" + s.markdown() + "\n" + a.markdown()


def run_side_by_side(config: D3Config, tasks: list[D3Task]) -> SideBySide:
    from qaemb_fast.embedder import QAEmbedder

    folder = Path(config.teacher_labels)
    if not folder.is_dir():
        raise FileNotFoundError(f"--teacher-labels {folder}: no such folder")
    student = QAEmbedder.from_pretrained(config.checkpoint)
    teacher_answers = {task.name: answer_from_labels(folder, task) for task in tasks}
    student_all = {task.name: answer_with_encoder(student, task, config.batch_size) for task in tasks}

    def same_texts(task):
        t, p = teacher_answers[task.name], student_all[task.name]
        return None if t is None or p is None else (p[t[1]], t[1])

    results = []
    for name, answer in (
        (f"teacher answers in {folder}", lambda task: teacher_answers[task.name]),
        (f"student {config.checkpoint}, on the teacher's texts", same_texts),
        (f"student {config.checkpoint}, all texts", lambda task: student_all[task.name]),
    ):
        rows = evaluate(tasks, answer)
        results.append(D3Result(rows, summarize(rows), name, asdict(config)))
    result = SideBySide(*results)
    if config.out:
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.md").write_text(result.markdown())
        payload = {key: {"answerer": r.answerer, "summary": r.summary, "tasks": r.rows} for key, r in
                   zip(("teacher", "student_same_texts", "student_all_texts"), results)}  # fmt: skip
        (out / "results.json").write_text(json.dumps(dict(payload, config=asdict(config)), indent=1) + "\n")
    return result


def run_d3(config: D3Config) -> D3Result | SideBySide | None:
    """Score the teacher (from labelling folders) or a student checkpoint on the D3 tasks; write results if out."""
    tasks = load_d3_tasks(config.data, config.tasks)
    if config.export_texts:
        folders = export_d3_texts(tasks, config.export_texts, config.seed)
        print(f"wrote the texts and question of {len(folders)} tasks to {config.export_texts}; label each task with")
        print(
            f"  qaemb-fast label --corpus {folders[0]}/{TEXTS_FILE} --questions {folders[0]}/{QUESTIONS_FILE} "
            f"--out {folders[0]}/{ANSWERS_DIR} --calibration none"
        )
        print(f"(or all of them in turn: python bench/label_d3.py {config.export_texts}), then score with")
        print(f"  qaemb-fast eval d3 --data {config.data} --teacher-labels {config.export_texts}")
        return None
    if config.teacher_labels and config.checkpoint:
        return run_side_by_side(config, tasks)
    if config.teacher_labels:
        folder = Path(config.teacher_labels)
        if not folder.is_dir():
            raise FileNotFoundError(f"--teacher-labels {folder}: no such folder")
        answerer = f"teacher answers in {folder}"
        rows = evaluate(tasks, lambda task: answer_from_labels(folder, task))
    else:
        from qaemb_fast.embedder import QAEmbedder

        student = QAEmbedder.from_pretrained(config.checkpoint)
        answerer = f"student {config.checkpoint or 'checkpoints/default'}"
        rows = evaluate(tasks, lambda task: answer_with_encoder(student, task, config.batch_size))
    result = D3Result(rows, summarize(rows), answerer, asdict(config))
    if config.out:
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.md").write_text(result.markdown())
        payload = {"answerer": answerer, "summary": result.summary, "tasks": rows, "config": result.config}
        (out / "results.json").write_text(json.dumps(payload, indent=1) + "\n")
    return result
