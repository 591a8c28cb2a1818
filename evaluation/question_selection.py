"""Keep the K questions that matter: a multi-task elastic-net path over QA features (the paper's selection).

    X (n_texts, Q) answers, Y (n_texts, T) targets (voxel responses, or one-hot class labels)
      ──► z-score X and Y ──► sklearn `enet_path` with 2-D Y (the multi-task elastic net: the L1 part acts on
          each question's whole row of T weights, so a question is in or out for all targets at once)
      ──► walk the path from the strongest penalty down to the first alpha that keeps >= K questions
          (refined on a finer grid between the two path points around K)
      ──► rank the kept questions by the L2 norm of their weight row; take the top K.

l1_ratio 0.9 as in the paper (csinva/interpretable-embeddings). Standardising matters: a question answered
"yes" for nearly every text has a small variance and would otherwise need a huge weight to matter.

    sel = select_questions(X, Y, k=29)
    subset = question_set.subset(sel.indices)       # a QuestionSet, ready to save
    QAEmbedder.from_pretrained(ckpt).encode(texts, questions=subset.questions)   # a student answers the subset
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class SelectionResult:
    indices: list[int]  # selected columns of X, largest weight norm first
    weight_norms: np.ndarray  # (len(indices),) L2 norm of each selected question's weight row (standardised units)
    alpha: float  # the penalty at which the selection was read off the path
    n_nonzero: int  # questions with a nonzero weight row at that alpha (>= len(indices) unless the path ran out)
    path_alphas: np.ndarray  # (A,) the coarse path, largest first
    path_n_nonzero: np.ndarray  # (A,) questions kept at each alpha of the coarse path

    def to_dict(self, questions=None) -> dict:
        d = {
            "indices": [int(i) for i in self.indices],
            "weight_norms": [float(w) for w in self.weight_norms],
            "alpha": float(self.alpha),
            "n_nonzero": int(self.n_nonzero),
            "path": [[float(a), int(n)] for a, n in zip(self.path_alphas, self.path_n_nonzero)],
        }
        if questions is not None:
            d["questions"] = [questions[i] for i in self.indices]
        return d


def one_hot(labels) -> tuple[np.ndarray, list]:
    """Class labels (n,) of any hashable type -> (Y (n, C) float64 one-hot, classes in sorted order)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"class labels must be 1-D, got shape {labels.shape}")
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"class labels need at least 2 classes, got {len(classes)}: {classes.tolist()}")
    Y = np.zeros((len(labels), len(classes)))
    Y[np.arange(len(labels)), codes] = 1.0
    return Y, classes.tolist()


def _zscore(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(0)
    sd = a.std(0)
    return a / np.where(sd > 0, sd, 1.0)  # constant columns stay all-zero: never selected, no division by 0


def _nonzero_rows(coefs: np.ndarray) -> np.ndarray:
    """enet_path coefs (T, Q, A) -> (Q, A) L2 norm of each question's weight row at each alpha."""
    return np.sqrt((coefs**2).sum(axis=0))


def select_questions(
    X,
    Y,
    k: int,
    l1_ratio: float = 0.9,
    n_alphas: int = 100,
    eps: float = 1e-3,
    max_iter: int = 5000,
    tol: float = 1e-4,
) -> SelectionResult:
    """Select k columns of X that jointly predict all targets in Y.

    X: (n, Q) features. Y: (n,) or (n, T) real targets (use `one_hot` for class labels).
    Returns a SelectionResult; `indices` has k entries unless fewer than k questions ever get a nonzero weight
    (then a warning, and the ones that do).
    """
    from sklearn.linear_model import enet_path

    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"X must be (n, Q) and Y (n,) or (n, T); got X {X.shape}, Y {Y.shape}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}: one row per text in both")
    if X.shape[0] < 3:
        raise ValueError(f"need at least 3 texts to select questions, got {X.shape[0]}")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("X and Y must be finite (no NaN/inf)")
    if not 1 <= k <= X.shape[1]:
        raise ValueError(f"k must be in [1, {X.shape[1]}] (the number of questions), got {k}")
    if not 0 < l1_ratio <= 1:
        raise ValueError(f"l1_ratio must be in (0, 1], got {l1_ratio}")
    Xs, Ys = _zscore(X), _zscore(Y)
    if not Ys.any():
        raise ValueError("every target is constant: there is nothing to predict")

    def path(alphas=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at the weakest penalties is harmless for ranking
            kw = {"alphas": alphas} if alphas is not None else {"n_alphas": n_alphas, "eps": eps}
            alphas, coefs, _ = enet_path(Xs, Ys, l1_ratio=l1_ratio, max_iter=max_iter, tol=tol, **kw)
        return alphas, _nonzero_rows(coefs)

    alphas, norms = path()
    n_nonzero = (norms > 0).sum(axis=0)
    hits = np.flatnonzero(n_nonzero >= k)
    if len(hits) == 0:
        a = len(alphas) - 1
        warnings.warn(
            f"only {n_nonzero[a]} questions get a nonzero weight anywhere on the path (k={k}); returning those. "
            "Lower eps or l1_ratio to reach k.",
            stacklevel=2,
        )
        alpha, row = alphas[a], norms[:, a]
    else:
        a = hits[0]
        alpha, row = alphas[a], norms[:, a]
        if a > 0 and n_nonzero[a] > k:
            # The coarse grid jumped past k: search a finer grid between the two neighbouring alphas.
            fine = np.geomspace(alphas[a - 1], alphas[a], 22)[1:-1]
            f_alphas, f_norms = path(fine)
            f_nonzero = (f_norms > 0).sum(axis=0)
            f_hits = np.flatnonzero(f_nonzero >= k)
            if len(f_hits):
                alpha, row = f_alphas[f_hits[0]], f_norms[:, f_hits[0]]
    nz = int((row > 0).sum())
    # Rank by weight norm; ties (rare) broken by column order so the result is deterministic.
    order = sorted(np.flatnonzero(row > 0), key=lambda j: (-row[j], j))[:k]
    return SelectionResult(
        indices=[int(j) for j in order],
        weight_norms=row[order],
        alpha=float(alpha),
        n_nonzero=nz,
        path_alphas=alphas,
        path_n_nonzero=n_nonzero,
    )


# ---------------------------------------------------------------------------------------------------------------
# Inputs and outputs of `qaemb-fast questions select | subset-labels`


def load_features(path, questions=None):
    """(X (n, Q) float, question set, texts or None) from X.npy (+ questions file) or a labelled-dataset folder."""
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


def is_classes(y, kind: str = "auto") -> bool:
    """Are targets y class labels (one-hot them) or real values? kind: auto | classes | regression; auto: one
    non-numeric column, or one integer column with <= 50 distinct values, is classes."""
    if kind != "auto":
        return kind == "classes"
    if y.ndim != 1:
        return False
    if not np.issubdtype(y.dtype, np.number) or y.dtype == bool:
        return True
    return np.issubdtype(y.dtype, np.integer) and len(np.unique(y)) <= 50


def subset_labels(data, questions, out):
    """Write a labelled dataset with only `questions`' answer columns (same rows); returns the output folder.
    No teacher call: the answers are the ones already labelled, so the subset costs seconds."""
    from distill.labelled_dataset import load_labelled_dataset, write_labelled_dataset
    from qaemb_fast.questions import as_question_set

    ds, prov, qs = load_labelled_dataset(data)
    keep = as_question_set(questions)
    idx = qs.indices(list(keep.questions))  # unknown questions raise with the closest known ones
    answers = np.asarray(ds["answers"], dtype=np.float32)[:, idx]
    prov = dict(prov, questions=list(keep.questions), question_set_name=keep.name, subset_of=qs.hash)
    return write_labelled_dataset(out, ds["text"], ds["doc_id"], answers, prov)
