"""`qaemb-fast eval calibration`: which calibration makes the teacher's yes/no answers right?

Every calibration in distill/calibration.py is a fixed transform of the teacher's raw P(yes), so they can all be
compared on stored raw answers, on the SAME pairs, without asking the teacher again:

    none          the raw answers
    contextual    minus each question's log-odds on content-free inputs (the only step that needs the teacher:
                  3 short prompts per question, cached in OUT/content_free.json)
    shifted       contextual, minus one global shift fitted on gold pairs (`fit_shift`: the gold yes-rate)
    platt         per-question logistic fit on gold pairs (`fit_platt`); only for questions with labels
    <variant>     another prompt's answers (another labelling folder), raw and shifted

Gold set (evaluation/gold.py): the calibrations fitted on gold labels are cross-fitted over gold TEXTS (k folds:
fit on k-1, apply to the held-out texts), so the gold rows are out of sample. D3 (evaluation/d3.py): the shift is
fitted on all gold pairs of that prompt; D3's questions are not in the gold set, so D3 is out of sample, and
Platt scaling has nothing to be fitted on there. Gold pairs: the gold texts labelled in every folder given; D3
pairs: per task, the texts labelled in every D3 folder given (partial jobs label a seeded random prefix).
The shift fitted on all gold pairs of the current prompt is the value to store as distill.calibration.DEFAULT_SHIFT.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from distill.calibration import (
    CONTENT_FREE_INPUTS,
    DEFAULT_SHIFT,
    Calibration,
    content_free_logodds,
    fit_platt,
    fit_shift,
)

CACHE_FILE = "content_free.json"
CURRENT = "current prompt"
PLATT_ON_D3 = "n/a: needs labels for the question"


@dataclass
class CalibrationEvalConfig:
    gold_labels: str = ""  # labelling folder of the current prompt's teacher answers on the gold texts
    gold: str | None = None  # gold file (default: the packaged evaluation/data/gold_default_questions.jsonl)
    d3_data: str | None = None  # the D3 folder (tasks.json + <task>.jsonl), e.g. ../shared/data/d3 (default: no D3)
    d3_labels: str | None = None  # folder of the per-task D3 labelling jobs (`eval d3 --export-texts`), same prompt
    variant: tuple[str, ...] = field(
        default=(), metadata={"metavar": "NAME=DIR"}
    )  # another prompt's labelling folder on the gold texts: adds its raw and shifted rows
    d3_variant: tuple[str, ...] = field(
        default=(), metadata={"metavar": "NAME=DIR"}
    )  # the D3 labelling jobs of the --variant NAME prompt (a folder like --d3-labels)
    folds: int = 5  # cross-validation folds over the gold texts for the calibrations fitted on gold labels
    seed: int = 0  # the folds
    recompute_content_free: bool = False  # ask the teacher again even where OUT/content_free.json has the answers
    device: str | None = None  # the teacher's device for the content-free inputs (default: cuda if available)
    out: str = ""  # write results.md, results.json and the content-free cache here


def parse_variants(specs, option: str) -> dict[str, Path]:
    """{NAME: folder} from NAME=DIR strings, with one clear error per bad entry."""
    out = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        name = name.strip()
        if not sep or not name or not folder:
            raise ValueError(f"{option} {spec!r}: expected NAME=DIR")
        if name in out or name == CURRENT:
            raise ValueError(f"{option} {spec!r}: the name {name!r} is used twice")
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"{option} {spec!r}: no such folder {folder}")
        out[name] = Path(folder)
    return out


def raw_answers(folder):
    """The teacher's raw P(yes) in a labelling folder, as an AnswerTable (whatever calibration the job stored)."""
    import inspect

    from distill.label import answers_by_text

    return (
        answers_by_text(folder, raw=True)
        if "raw" in inspect.signature(answers_by_text).parameters
        else (answers_by_text(folder))
    )


def check_same_setup(reference: dict, folder, name: str) -> None:
    """A D3 job must be labelled with the same teacher and prompt as its gold folder: its shift is fitted there."""
    from distill.label import read_provenance, setup_differences

    ignore = ("question_set_hash", "calibration", "corpus_hash", "num_unique_texts", "chunk_size")
    diffs = setup_differences(reference, read_provenance(folder), ignore=ignore)
    if diffs:
        raise ValueError(
            f"{folder}: labelled with another setup than the gold answers of {name!r} ({', '.join(diffs)})"
        )


# ---------------------------------------------------------------------------------------------------------------- content-free


def setup_key(provenance: dict) -> str:
    """What determines a prompt's content-free answers: teacher weights, prompt, dtype, text limit, inputs."""
    ident = {k: provenance.get(k) for k in ("teacher_weights_sha256", "prompt", "dtype", "max_text_tokens")}
    ident["teacher"] = None if ident["teacher_weights_sha256"] else provenance.get("teacher")
    ident["inputs"] = list(CONTENT_FREE_INPUTS)
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def content_free_table(setups: dict[str, tuple[dict, list[str]]], cache_path: Path, recompute=False, device=None):
    """{setup name: {question: content-free log-odds}} for each setup (provenance, questions needed).

    Read from the cache where it has them; the rest are asked of the teacher the provenance names (loaded once per
    teacher, its weights checked against the provenance), and the cache is rewritten."""
    from qaemb_fast.jobs import atomic_write_json

    cache = {} if recompute or not cache_path.exists() else json.loads(cache_path.read_text())
    todo = {}
    for name, (prov, questions) in setups.items():
        about = {k: prov.get(k) for k in ("teacher", "teacher_weights_sha256", "prompt", "dtype", "max_text_tokens")}
        entry = cache.setdefault(setup_key(prov), dict(about, inputs=list(CONTENT_FREE_INPUTS), logodds={}))
        missing = [q for q in dict.fromkeys(questions) if q not in entry["logodds"]]
        if missing:
            todo[name] = (prov, missing, entry)
    if todo:
        teachers = {}
        for name, (prov, missing, entry) in todo.items():
            teacher = prompt_teacher(prov, teachers, device)
            start = time.time()
            print(f"content-free log-odds of {len(missing)} questions, {name} ({len(CONTENT_FREE_INPUTS)} inputs) ...")
            z = content_free_logodds(teacher, missing)
            entry["logodds"].update(zip(missing, map(float, z)))
            print(f"  {time.time() - start:.0f} s")
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cache_path, cache)
    return {name: cache[setup_key(prov)]["logodds"] for name, (prov, _) in setups.items()}


def prompt_teacher(provenance: dict, loaded: dict, device=None):
    """The teacher and prompt of a labelling job; the model is loaded once per (teacher, dtype) in `loaded`."""
    from distill.teacher import PromptConfig, Teacher

    prompt = PromptConfig(**provenance["prompt"])
    model_key = (provenance["teacher"], provenance.get("dtype"))
    if model_key not in loaded:
        print(f"loading the teacher {provenance['teacher']} ({provenance.get('dtype')}) for the content-free inputs")
        base = Teacher.from_pretrained(provenance["teacher"], dtype=provenance.get("dtype") or "auto", device=device)
        want = provenance.get("teacher_weights_sha256")
        if want and base.weights_sha256() != want:
            raise ValueError(f"the teacher {provenance['teacher']!r} found here has other weights than the labels' one")
        loaded[model_key] = base
    base = loaded[model_key]
    limit = provenance.get("max_text_tokens")
    return Teacher(
        base.model,
        base.tokenizer,
        prompt=prompt,
        name=base.name,
        max_text_tokens=limit,
        source=base.source,
        engine=base.engine,
    )


# ---------------------------------------------------------------------------------------------------------------- calibrating


def cross_fitted(p_raw, folds, fit) -> tuple[np.ndarray, list[Calibration]]:
    """Out-of-fold calibrated answers (n, Q) and the calibration of each fold: for each (train, test) fold of rows,
    fit(train) -> Calibration is applied to the test rows, so no answer is calibrated with its own label."""
    out, fitted = np.empty(p_raw.shape, dtype=np.float32), []
    for train, test in folds:
        fitted.append(fit(train))
        out[test] = fitted[-1](p_raw[test])
    return out, fitted


def gold_calibrations(p_raw, labels, questions, z_cf, folds, kinds) -> tuple[dict, dict]:
    """Calibrated gold answers {kind: (n, Q)} and the fitted shifts {"folds": [...], "all": float}."""
    contextual = Calibration("contextual", questions, content_free_logodds=list(z_cf))
    z_ctx = contextual.logodds(p_raw)

    def shifted(rows) -> Calibration:
        shift = fit_shift(z_ctx[rows].ravel(), labels[rows].ravel())
        return Calibration("shifted", questions, content_free_logodds=list(z_cf), shift=shift)

    def platt(rows) -> Calibration:
        a, b = fit_platt(p_raw[rows], labels[rows])
        return Calibration("platt", questions, platt_a=list(a), platt_b=list(b))

    made = {"none": p_raw.astype(np.float32), "contextual": contextual(p_raw)}
    made["shifted"], per_fold = cross_fitted(p_raw, folds, shifted)
    if "platt" in kinds:
        made["platt"], _ = cross_fitted(p_raw, folds, platt)
    shifts = {"folds": [c.shift for c in per_fold], "all": shifted(np.arange(len(p_raw))).shift}
    return {k: made[k] for k in kinds}, shifts


def d3_calibrated(p_raw, question: str, z_cf: float, kind: str, shift: float) -> np.ndarray:
    """One D3 task's answers (n,) under `kind` ("none", "contextual" or "shifted" by the gold-fitted shift)."""
    if kind == "none":
        return np.asarray(p_raw, dtype=np.float32)
    c = Calibration(kind, [question], content_free_logodds=[z_cf], shift=shift if kind == "shifted" else 0.0)
    return c(np.asarray(p_raw)[:, None])[:, 0]


# ---------------------------------------------------------------------------------------------------------------- the run


def same_gold_pairs(folders: dict, texts, questions) -> tuple[dict, list[int], list[int]]:
    """Raw answers {name: (m, k)} of each folder on the gold texts (rows) and questions (cols) answered in all."""
    from evaluation.gold import answers_from_labels

    read = {name: answers_from_labels(folder, texts, questions, raw=True) for name, folder in folders.items()}
    rows = sorted(set.intersection(*(set(r.tolist()) for _, r, _ in read.values())))
    cols = sorted(set.intersection(*(set(c.tolist()) for _, _, c in read.values())))
    answers = {}
    for name, (p, r, c) in read.items():
        ri, ci = {v: i for i, v in enumerate(r.tolist())}, {v: i for i, v in enumerate(c.tolist())}
        answers[name] = p[np.ix_([ri[i] for i in rows], [ci[j] for j in cols])]
    return answers, rows, cols


def same_d3_pairs(tasks, folders: dict, provenance: dict) -> tuple[list, dict, list[str]]:
    """Per D3 task, the texts labelled in every D3 folder: ([(task, text indices)], {name: {task: raw P(yes)}},
    names of the tasks skipped because some folder has no labelled text for them)."""
    from evaluation.d3 import ANSWERS_DIR

    kept, answers, skipped = [], {name: {} for name in folders}, []
    for task in tasks:
        jobs = {name: folder / task.name / ANSWERS_DIR for name, folder in folders.items()}
        if not all(any((job / "parts").glob("chunk-*.npz")) or (job / "dataset").is_dir() for job in jobs.values()):
            skipped.append(task.name)
            continue
        tables = {}
        for name, job in jobs.items():
            check_same_setup(provenance[name], job, name)
            tables[name] = raw_answers(job)
            if task.question not in tables[name].questions:
                raise ValueError(f"{job}: answers {tables[name].questions}, not the task's question {task.question!r}")
        keep = [i for i, t in enumerate(task.texts) if all(t.strip() in table for table in tables.values())]
        if not keep:
            skipped.append(task.name)
            continue
        kept.append((task, np.array(keep)))
        for name, table in tables.items():
            col = table.questions.index(task.question)
            answers[name][task.name] = np.array([float(table[task.texts[i].strip()][col]) for i in keep])
    return kept, answers, skipped


@dataclass
class CalibrationEvalResult:
    rows: list[dict]  # one per calibration: name, prompt, kind, gold (score_gold), d3 (summary + tasks) or d3_na
    shifts: dict  # prompt -> {"folds": [...], "all": shift fitted on all gold pairs}
    n_gold_texts: int
    n_gold_texts_total: int
    gold_questions: int
    d3_tasks: list[dict]  # name, n (texts scored), n_total
    d3_skipped: list[str]  # D3 tasks without texts labelled in every D3 folder
    config: dict = field(default_factory=dict)

    def markdown(self) -> str:
        from evaluation.d3 import METRICS

        cols = "| ROC-AUC | bal. acc. | acc. | majority acc. | yes-rate | true yes-rate |"
        lines = [
            "### Calibrations of the teacher's answers, side by side on the same pairs",
            "",
            f"Gold set: {self.n_gold_texts} of {self.n_gold_texts_total} texts x {self.gold_questions} questions "
            f"(the texts labelled in every folder), decision P(yes) > 0.5; shifted and platt fitted on gold labels "
            f"are {self.config.get('folds')}-fold cross-fitted over texts (fit on the other folds' texts).",
            "",
        ]
        for key, title in (("pooled", "all pairs"), ("pooled_unambiguous", "without the ambiguous pairs")):
            lines += [
                f"Gold, pooled over pairs, {title} (ROC-AUC per q.: the mean over questions with both classes):",
                "",
                "| calibration | ROC-AUC per q. " + cols.replace("| ROC-AUC |", "| ROC-AUC pooled |"),
                "|---|" + "---:|" * 7,
            ]
            for r in self.rows:
                g = r["gold"][key]
                per_q = r["gold"]["per_question" + key.removeprefix("pooled")]["roc_auc"]
                lines.append(f"| {r['name']} | {per_q:.3f} | " + " | ".join(f"{g[m]:.3f}" for m in METRICS) + " |")
            lines.append("")
        if self.d3_tasks:
            n, total = sum(t["n"] for t in self.d3_tasks), sum(t["n_total"] for t in self.d3_tasks)
            lines += [
                f"D3: mean over {len(self.d3_tasks)} tasks ({n} of their {total} texts labelled, a seeded random "
                f"subsample per task; {len(self.d3_skipped)} tasks with no labelled text skipped). The shift is the "
                "one fitted on all gold pairs of the same prompt.",
                "",
                "| calibration " + cols + " tasks with acc. >= majority |",
                "|---|" + "---:|" * 7,
            ]
            for r in self.rows:
                if "d3" not in r:
                    lines.append(f"| {r['name']} | {r['d3_na']} |||||| |")
                    continue
                s = r["d3"]["summary"]
                vals = " | ".join(f"{s[m]:.3f}" for m in METRICS)
                lines.append(f"| {r['name']} | {vals} | {s['n_at_least_majority']} of {s['n_answerable']} |")
            lines.append("")
        lines.append(self.shift_line())
        return "\n".join(lines) + "\n"

    def shift_line(self) -> str:
        parts = [f"{name}: {s['all']:.3f}" for name, s in self.shifts.items()]
        return (
            f"Shift fitted on all {self.n_gold_texts * self.gold_questions} gold pairs (fit_shift on the contextual "
            f"log-odds): {'; '.join(parts)} (distill.calibration.DEFAULT_SHIFT is {DEFAULT_SHIFT})."
        )


def run_calibration_eval(config: CalibrationEvalConfig) -> CalibrationEvalResult:
    """Score every calibration on the same gold and D3 pairs from stored raw answers; write OUT/results.{md,json}."""
    from sklearn.model_selection import KFold

    from distill.label import read_provenance
    from evaluation.d3 import evaluate, load_d3_tasks, summarize
    from evaluation.gold import load_gold_set, score_gold

    if not config.out:
        raise ValueError("--out is required (results and the content-free cache go there)")
    if config.folds < 2:
        raise ValueError(f"--folds must be at least 2, got {config.folds}")
    gold_folders = {CURRENT: Path(config.gold_labels)} | parse_variants(config.variant, "--variant")
    if not gold_folders[CURRENT].is_dir():
        raise FileNotFoundError(f"--gold-labels {config.gold_labels}: no such folder")
    d3_folders = parse_variants(config.d3_variant, "--d3-variant")
    unknown = sorted(set(d3_folders) - set(gold_folders))
    if unknown:
        raise ValueError(f"--d3-variant {unknown[0]!r}: no --variant of that name (its shift is fitted on gold)")
    if config.d3_data and not config.d3_labels:
        raise ValueError("--d3-data needs --d3-labels (the per-task labelling jobs of the current prompt)")
    if config.d3_labels:
        if not config.d3_data:
            raise ValueError("--d3-labels needs --d3-data (the D3 folder with the gold labels)")
        if not Path(config.d3_labels).is_dir():
            raise FileNotFoundError(f"--d3-labels {config.d3_labels}: no such folder")
        d3_folders = {CURRENT: Path(config.d3_labels)} | d3_folders

    texts, questions, labels, ambiguous = load_gold_set(config.gold)
    provenance = {name: read_provenance(folder) for name, folder in gold_folders.items()}
    gold_p, rows, cols = same_gold_pairs(gold_folders, texts, questions)
    if len(rows) < config.folds:
        raise ValueError(f"{len(rows)} gold texts are labelled in every folder: too few for {config.folds} folds")
    gold_q = [questions[j] for j in cols]
    y, amb = labels[np.ix_(rows, cols)].astype(int), ambiguous[np.ix_(rows, cols)]
    folds = list(KFold(config.folds, shuffle=True, random_state=config.seed).split(rows))
    d3_tasks = load_d3_tasks(config.d3_data) if d3_folders else []
    tasks, d3_p, skipped = same_d3_pairs(d3_tasks, d3_folders, provenance)

    # Content-free log-odds of every question each prompt is scored on.
    needed = {name: gold_q + ([t.question for t, _ in tasks] if name in d3_folders else []) for name in gold_folders}
    setups = {name: (provenance[name], qs) for name, qs in needed.items()}
    z_cf = content_free_table(setups, Path(config.out) / CACHE_FILE, config.recompute_content_free, config.device)

    results, shifts = [], {}
    for name in gold_folders:
        kinds = ("none", "contextual", "shifted", "platt") if name == CURRENT else ("none", "shifted")
        made, shifts[name] = gold_calibrations(gold_p[name], y, gold_q, [z_cf[name][q] for q in gold_q], folds, kinds)
        for kind in kinds:
            label = kind if name == CURRENT else f"{name}: {kind}"
            row = {"name": label, "prompt": name, "kind": kind, "gold": score_gold(made[kind], y, amb)}
            if kind == "platt":
                row["d3_na"] = PLATT_ON_D3
            elif name not in d3_folders:
                row["d3_na"] = "n/a: no D3 labels for this prompt"
            elif tasks:
                shift, answers = shifts[name]["all"], {}
                for t, keep in tasks:
                    p = d3_calibrated(d3_p[name][t.name], t.question, z_cf[name][t.question], kind, shift)
                    answers[t.name] = (p, keep)
                task_rows = evaluate([t for t, _ in tasks], lambda t, a=answers: a[t.name])
                row["d3"] = {"summary": summarize(task_rows), "tasks": task_rows}
            results.append(row)

    result = CalibrationEvalResult(
        results,
        shifts,
        len(rows),
        len(texts),
        len(gold_q),
        [{"task": t.name, "n": len(keep), "n_total": len(t.texts)} for t, keep in tasks],
        skipped,
        asdict(config),
    )
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(result.markdown())
    payload = asdict(result)
    payload["content_free_logodds"] = {name: {q: z_cf[name][q] for q in needed[name]} for name in gold_folders}
    (out / "results.json").write_text(json.dumps(payload, indent=1) + "\n")
    return result
