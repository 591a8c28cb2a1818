"""The paper's simple NLP tasks: logistic regression on QA features vs. bag-of-words and a dense embedding.

Tasks (real, offline, from Debian packages unpacked without root or R):
  food      Amazon fine-food reviews, 5 stars vs. other: r-cran-modeldata `small_fine_foods`
            (its own split: training_data 4,000 / testing_data 1,000; 65 % are 5-star).
  fortunes  the topic of a fortune-cookie quote: 6 categories of the Debian `fortunes` package
            (/usr/share/games/fortunes/<category>, '%'-separated), at most 250 quotes each, seeded 70/30 split.

Feature sets, each followed by the same logistic regression (L2, C chosen by 5-fold CV on the training set):
  student   a student checkpoint's P(yes) answers (QAEmbedder.encode)
  teacher   the teacher's answers, read from a labelled-dataset folder made by `qaemb-fast label` on the
            task's texts (see `qaemb-fast eval export-texts`); texts without answers restrict every model to the
            texts that have them, and the report says so
  bow       word counts (CountVectorizer); tfidf: tf-idf of words and word pairs
  minilm    the plain all-MiniLM-L6-v2 sentence embedding (mean pooling)
  majority  always the most frequent training class (accuracy floor, AUC 0.5)

Reported on the test split: accuracy and ROC AUC (macro one-vs-rest for several classes), each with a seeded
bootstrap 95 % interval, and for QA features the questions with the largest coefficients (standardised features).
Everything is seeded: the same inputs give the same numbers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from qaemb_fast.device import PRECISIONS
from qaemb_fast.questions import QuestionSet, as_question_set

FOOD_PACKAGE, FOOD_DATA = "r-cran-modeldata", "usr/lib/R/site-library/modeldata/data"
FORTUNES_PACKAGE, FORTUNES_DIR = "fortunes", "usr/share/games/fortunes"
FORTUNE_CATEGORIES = ("computers", "food", "love", "politics", "science", "sports")
MAX_PER_CATEGORY = 250
TASKS = ("food", "fortunes")
MODELS = ("student", "teacher", "bow", "tfidf", "minilm", "majority")
MODEL_NAMES = {
    "student": "QA student",
    "teacher": "QA teacher",
    "bow": "bag-of-words (counts)",
    "tfidf": "tf-idf (words + pairs)",
    "minilm": "MiniLM sentence embedding",
    "majority": "majority class",
}


class TaskDataError(RuntimeError):
    """A task's data cannot be found or fetched."""


@dataclass
class ClassifyTask:
    """Texts and integer labels of one task, split into train and test. y values index class_names."""

    name: str
    class_names: list[str]
    train_texts: list[str]
    train_y: np.ndarray
    test_texts: list[str]
    test_y: np.ndarray
    notes: list[str] = field(default_factory=list)

    def restrict(self, keep_train, keep_test, note: str) -> ClassifyTask:
        kt, ks = np.asarray(keep_train, bool), np.asarray(keep_test, bool)
        return ClassifyTask(
            self.name,
            self.class_names,
            [t for t, k in zip(self.train_texts, kt) if k],
            self.train_y[kt],
            [t for t, k in zip(self.test_texts, ks) if k],
            self.test_y[ks],
            self.notes + [note],
        )


# ----------------------------------------------------------------------------------------------------------------
# Data: fetch the Debian packages (distill.corpus does the fetching), read them


def package_root(package: str, marker: str, cache_dir=None) -> Path:
    """The root under which the Debian package's file `marker` exists, fetched into the corpus cache on first use
    (`distill.corpus.debian_package_root`); TaskDataError when it cannot be had."""
    from distill.corpus import CorpusError, debian_package_root

    try:
        return debian_package_root(package, marker, cache_dir)
    except CorpusError as e:  # offline, no apt, or apt does not know the package
        raise TaskDataError(str(e)) from e


def _clean(text: str) -> str:
    text = re.sub(r".\x08", "", text)  # "overstriking" (char, backspace) in old fortune files
    return re.sub(r"\s+", " ", text.replace("<br />", " ")).strip()


@lru_cache(maxsize=2)
def _food_frames(cache_dir=None):
    from distill.corpus import read_r_lazyload

    data = read_r_lazyload(package_root(FOOD_PACKAGE, FOOD_DATA + "/Rdata.rdx", cache_dir) / FOOD_DATA)
    out = []
    for split in ("training_data", "testing_data"):
        df = data[split]
        out.append(([_clean(str(t)) for t in df["review"]], (df["score"].astype(str) == "great").to_numpy(int)))
    return tuple(out)


def read_fortunes(path) -> list[str]:
    """The quotes of one fortune file ('%' lines separate them), cleaned; attribution lines ('-- Name') dropped."""
    quotes, lines = [], []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines() + ["%"]:
        if line.strip() == "%":
            text = _clean(" ".join(lines))
            if text:
                quotes.append(text)
            lines = []
        elif not line.strip().startswith("-- "):
            lines.append(line)
    return quotes


def _subsample(n: int, m: int | None, rng) -> np.ndarray:
    return np.arange(n) if m is None or m >= n else np.sort(rng.choice(n, size=m, replace=False))


def load_task(name: str, max_texts: int | None = None, seed: int = 0, cache_dir=None) -> ClassifyTask:
    """A task's train/test texts and labels. max_texts: a seeded subsample of that many texts in all
    (train and test keep their proportions)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {TASKS}")
    if max_texts is not None and max_texts < 20:
        raise ValueError(f"max_texts must be >= 20 (a train and a test split with every class), got {max_texts}")
    rng = np.random.default_rng(seed)
    if name == "food":
        (tr_x, tr_y), (te_x, te_y) = _food_frames(cache_dir)
        n_tr = None if max_texts is None else round(max_texts * len(tr_x) / (len(tr_x) + len(te_x)))
        n_te = None if max_texts is None else max_texts - n_tr
        i, j = _subsample(len(tr_x), n_tr, rng), _subsample(len(te_x), n_te, rng)
        return ClassifyTask("food", ["other", "5 stars"], [tr_x[k] for k in i], tr_y[i], [te_x[k] for k in j], te_y[j])
    from sklearn.model_selection import train_test_split

    root = package_root(FORTUNES_PACKAGE, f"{FORTUNES_DIR}/{FORTUNE_CATEGORIES[0]}", cache_dir) / FORTUNES_DIR
    texts, labels = [], []
    for c, cat in enumerate(FORTUNE_CATEGORIES):
        quotes = [q for q in dict.fromkeys(read_fortunes(root / cat)) if 4 <= len(q.split()) <= 120]
        keep = _subsample(len(quotes), MAX_PER_CATEGORY, rng)
        texts += [quotes[k] for k in keep]
        labels += [c] * len(keep)
    labels = np.array(labels)
    if max_texts is not None and max_texts < len(texts):
        idx, _ = train_test_split(np.arange(len(texts)), train_size=max_texts, stratify=labels, random_state=seed)
        idx = np.sort(idx)
        texts, labels = [texts[k] for k in idx], labels[idx]
    tr, te = train_test_split(np.arange(len(texts)), test_size=0.3, stratify=labels, random_state=seed)
    tr, te = np.sort(tr), np.sort(te)
    return ClassifyTask(
        "fortunes", list(FORTUNE_CATEGORIES), [texts[k] for k in tr], labels[tr], [texts[k] for k in te], labels[te]
    )


def export_task_texts(task: ClassifyTask, path, seed: int = 0, split: str = "all") -> int:
    """Write the task's texts as corpus JSONL ({text, doc_id, split, label}) for `qaemb-fast label` (which reads
    text and doc_id) and `qaemb-fast questions select --targets` (which reads label), in seeded random order: any
    prefix of a partial labelling run then covers train and test alike. split: all | train | test.
    Returns the number of lines."""
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be all, train or test, not {split!r}")
    rows = []
    for name, texts, ys in (("train", task.train_texts, task.train_y), ("test", task.test_texts, task.test_y)):
        if split in ("all", name):
            rows += [
                (t, f"{task.name}/{name}/{i}", name, task.class_names[y]) for i, (t, y) in enumerate(zip(texts, ys))
            ]
    order = np.random.default_rng(seed).permutation(len(rows))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for k in order:
            text, doc, part, label = rows[k]
            f.write(json.dumps({"text": text, "doc_id": doc, "split": part, "label": label}, ensure_ascii=False) + "\n")
    return len(rows)


# ----------------------------------------------------------------------------------------------------------------
# Models and metrics


CS = np.logspace(-3, 3, 13)  # the grid of inverse regularisation strengths searched by CV


def fit_logistic(X_train, y_train, seed: int = 0, scale: bool = True):
    """L2 logistic regression, C picked from CS by seeded stratified 5-fold CV (held-out log loss).

    scale: z-score the features first (dense features; sparse counts are left as they are).
    Returns a fitted sklearn Pipeline; pipeline[-1] is the LogisticRegression (coef_ in standardised units).
    Each fold walks the C grid from strong to weak regularisation with warm starts, like LogisticRegressionCV,
    which makes the search several times faster than independent fits (sparse counts converge slowly).
    BLAS runs single-threaded here: these matrices are small, and a multi-threaded BLAS sharing a busy CPU was
    measured 20x slower.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    def model(C):
        clf = LogisticRegression(C=C, max_iter=2000, warm_start=True)
        return make_pipeline(StandardScaler(), clf) if scale else make_pipeline(clf)

    y_train = np.asarray(y_train)
    folds = min(5, int(np.bincount(y_train).min()))
    if folds < 2:
        raise ValueError("every class needs at least 2 training texts for cross-validation")
    loss = np.zeros(len(CS))
    with threadpool_limits(1):
        for tr, va in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y_train)), y_train):
            m = model(CS[0])
            for i, C in enumerate(CS):
                m.set_params(logisticregression__C=C).fit(X_train[tr], y_train[tr])
                loss[i] += log_loss(y_train[va], m.predict_proba(X_train[va]), labels=np.unique(y_train))
        return model(CS[int(np.argmin(loss))]).fit(X_train, y_train)


def scores(y, proba, n_classes: int, seed: int = 0, n_boot: int = 200) -> dict:
    """Accuracy and ROC AUC (binary, or macro one-vs-rest) with seeded bootstrap 95 % intervals."""
    from sklearn.metrics import roc_auc_score

    def auc(yy, pp):
        if len(np.unique(yy)) < n_classes:
            return np.nan  # a resample that lost a class
        if n_classes == 2:
            return roc_auc_score(yy, pp[:, 1])
        return roc_auc_score(yy, pp, multi_class="ovr", average="macro", labels=np.arange(n_classes))

    pred = proba.argmax(1)
    rng = np.random.default_rng(seed)
    boot = np.array(
        [
            (np.mean(pred[b] == y[b]), auc(y[b], proba[b]))
            for b in (rng.integers(0, len(y), len(y)) for _ in range(n_boot))
        ]
    )
    lo, hi = np.nanpercentile(boot, [2.5, 97.5], axis=0)
    return {
        "accuracy": float(np.mean(pred == y)),
        "accuracy_ci95": [float(lo[0]), float(hi[0])],
        "auc": float(auc(y, proba)),
        "auc_ci95": [float(lo[1]), float(hi[1])],
    }


def top_questions(model, questions, class_names, top: int = 10) -> list[dict]:
    """The questions with the largest standardised coefficients. Two classes: by |coef|, the sign says which
    class a yes points to; several classes: the top positive coefficients of each class."""
    coef = model[-1].coef_
    if coef.shape[0] == 1:
        order = np.argsort(-np.abs(coef[0]), kind="stable")[:top]
        return [
            {"question": questions[j], "coef": float(coef[0, j]), "class": class_names[1 if coef[0, j] > 0 else 0]}
            for j in order
        ]
    per = max(1, top // len(class_names))
    out = []
    for c, name in enumerate(class_names):
        for j in np.argsort(-coef[c], kind="stable")[:per]:
            out.append({"question": questions[j], "coef": float(coef[c, j]), "class": name})
    return out


# ----------------------------------------------------------------------------------------------------------------
# The evaluation


@dataclass
class ClassifyConfig:
    """One evaluation. The `qaemb-fast eval classify` options are generated from these fields and their comments."""

    task: str = field(default="food", metadata={"choices": TASKS})  # food reviews or fortune topics
    student: str | None = None  # student checkpoint folder (default: the shipped student; skipped if absent)
    # An unfinished labelling folder restricts every model to the texts labelled so far (the report says so).
    teacher_labels: str | None = None  # `qaemb-fast label` folder of the task's texts (default: no teacher row)
    questions: str | None = None  # question-set file: QA models use only these (e.g. from `questions select`)
    models: tuple[str, ...] = field(default=MODELS, metadata={"choices": MODELS})  # which rows
    max_texts: int | None = None  # a seeded subsample of this many texts (default: all)
    seed: int = 0  # subsample / split / CV / bootstrap seed
    precision: str = field(default="fp32", metadata={"choices": PRECISIONS})  # student precision (fp32: reproducible)
    top: int = 10  # most predictive questions listed per QA model
    batch_size: int = 32  # texts per forward pass of the student and MiniLM


def run_classify(config: ClassifyConfig, task: ClassifyTask | None = None, progress: bool = True) -> dict:
    """Fit and score every model of config.models on the task. Returns the results dict (see `to_markdown`)."""
    from tqdm.auto import tqdm

    unknown = sorted(set(config.models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {MODELS}")
    task = task or load_task(config.task, config.max_texts, config.seed)
    skipped, rows = {}, []

    teacher = None
    if "teacher" in config.models:
        if config.teacher_labels is None:
            skipped["teacher"] = (
                "no --teacher-labels given (label the task's texts: `qaemb-fast eval export-texts`, then "
                "`qaemb-fast label`)"
            )
        else:
            from distill.label import answers_by_text

            table = answers_by_text(config.teacher_labels)  # an unfinished labelling job counts too
            t_questions, t_name = table.questions, table.name
            has_tr = np.array([t in table for t in task.train_texts])
            has_te = np.array([t in table for t in task.test_texts])
            if not has_tr.all() or not has_te.all():
                if has_tr.sum() < 10 or has_te.sum() < 10:
                    raise ValueError(
                        f"{config.teacher_labels} answers only {has_tr.sum()} training and {has_te.sum()} test texts "
                        f"of task {task.name!r}; label the texts from `qaemb-fast eval export-texts` with the same "
                        "--max-texts and --seed"
                    )
                task = task.restrict(
                    has_tr,
                    has_te,
                    f"restricted to the {has_tr.sum()} training and {has_te.sum()} test texts that have teacher "
                    f"labels (of {len(has_tr)} and {len(has_te)})",
                )
            teacher = (table, t_questions, t_name)
    for split, y in (("train", task.train_y), ("test", task.test_y)):
        if len(np.unique(y)) < len(task.class_names):
            raise ValueError(f"the {split} split lacks a class ({np.bincount(y).tolist()}); use more texts")

    student = None
    if "student" in config.models:
        from qaemb_fast.embedder import QAEmbedder, default_checkpoint_path

        try:
            path = config.student or default_checkpoint_path()
            student = (QAEmbedder.from_pretrained(path, precision=config.precision), Path(path).name)
        except FileNotFoundError as e:
            skipped["student"] = f"no student checkpoint ({e})"

    subset = None if config.questions is None else as_question_set(config.questions)
    n_classes = len(task.class_names)
    for name in tqdm([m for m in config.models if m not in skipped], desc=f"eval {task.name}", disable=not progress):
        questions, label = None, MODEL_NAMES[name]
        if name == "majority":
            prior = np.bincount(task.train_y, minlength=n_classes) / len(task.train_y)
            proba = np.tile(prior, (len(task.test_y), 1))
            model = None
        else:
            scale = True
            if name == "student":
                emb, ckpt = student
                questions = emb.questions if subset is None else list(subset.questions)
                Xtr, Xte = (
                    emb.encode(t, batch_size=config.batch_size, questions=questions)
                    for t in (task.train_texts, task.test_texts)
                )
                label = f"QA student ({ckpt}, {len(questions)} q)"
            elif name == "teacher":
                table, questions, t_name = teacher
                cols = list(range(len(questions)))
                if subset is not None:
                    cols = QuestionSet(tuple(questions)).indices(list(subset.questions))
                    questions = list(subset.questions)
                Xtr, Xte = (np.stack([table[t][cols] for t in texts]) for texts in (task.train_texts, task.test_texts))
                label = f"QA teacher ({t_name}, {len(questions)} q)"
            elif name in ("bow", "tfidf"):
                from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

                vec = (
                    CountVectorizer(min_df=2)
                    if name == "bow"
                    else TfidfVectorizer(min_df=2, ngram_range=(1, 2), sublinear_tf=True)
                )
                Xtr, Xte = vec.fit_transform(task.train_texts), vec.transform(task.test_texts)
                scale = False
            else:  # minilm
                from qaemb_fast.sentence_embedding import SentenceEmbedder

                enc = SentenceEmbedder()
                Xtr, Xte = (enc.encode(t, batch_size=config.batch_size) for t in (task.train_texts, task.test_texts))
            model = fit_logistic(Xtr, task.train_y, seed=config.seed, scale=scale)
            proba = model.predict_proba(Xte)
        row = {"model": name, "name": label, **scores(task.test_y, proba, n_classes, seed=config.seed)}
        if model is not None:
            row["C"] = float(model[-1].C)
            row["n_features"] = int(Xtr.shape[1])
        if questions is not None:
            row["top_questions"] = top_questions(model, questions, task.class_names, config.top)
        rows.append(row)

    return {
        "task": task.name,
        "classes": task.class_names,
        "n_train": len(task.train_y),
        "n_test": len(task.test_y),
        "train_class_counts": np.bincount(task.train_y, minlength=n_classes).tolist(),
        "test_class_counts": np.bincount(task.test_y, minlength=n_classes).tolist(),
        "seed": config.seed,
        "max_texts": config.max_texts,
        "notes": task.notes,
        "skipped": skipped,
        "results": rows,
    }


def to_markdown(results: dict) -> str:
    """The results as markdown: one table of models (best AUC first), then each QA model's top questions."""
    r = results
    lines = [
        f"### `{r['task']}`: {' vs. '.join(r['classes'])} — {r['n_train']} train / {r['n_test']} test texts",
        "",
        "| model | accuracy | AUC | features | C |",
        "|---|---|---|---|---|",
    ]
    for row in sorted(r["results"], key=lambda x: -x["auc"]):
        if "C" not in row:  # the majority baseline: nothing fitted, no interval worth printing
            lines.append(f"| {row['name']} | {row['accuracy']:.3f} | {row['auc']:.3f} | – | – |")
            continue
        (a0, a1), (u0, u1) = row["accuracy_ci95"], row["auc_ci95"]
        lines.append(
            f"| {row['name']} | {row['accuracy']:.3f} [{a0:.3f}, {a1:.3f}] | {row['auc']:.3f} [{u0:.3f}, {u1:.3f}] "
            f"| {row['n_features']} | {row['C']:.3g} |"
        )
    lines.append("")
    lines.append("Brackets: bootstrap 95 % intervals over test texts. AUC: macro one-vs-rest for several classes.")
    for note in r["notes"]:
        lines.append(f"Note: {note}.")
    for model, why in r["skipped"].items():
        lines.append(f"Skipped {model}: {why}.")
    for row in r["results"]:
        if row.get("top_questions"):
            lines += ["", f"Most predictive questions, {row['name']}:", "", "| question | coef | points to |"]
            lines.append("|---|---|---|")
            lines += [f"| {q['question']} | {q['coef']:+.2f} | {q['class']} |" for q in row["top_questions"]]
    return "\n".join(lines) + "\n"
