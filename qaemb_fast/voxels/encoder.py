"""Voxelwise encoding model: features per TR -> ridge with a per-voxel alpha -> Pearson r per voxel.

    enc = VoxelEncoder(student)                      # or a teacher, or any feature source (features.py)
    enc.fit(train_stories, train_responses)          # responses: one (n_TRs_kept, V) array per story
    r = enc.score(test_stories, test_responses)      # (V,) Pearson r, the number the field reports
    enc.question_weights()                           # (Q, V) weights summed over delays
    enc.top_questions(voxel=123, k=5)

Responses of a story must have exactly `FeatureConfig.n_kept(story)` rows: the TRs left after dropping the
first `trim_start` (10) and last `trim_end` (5) of `story.tr_times`. ds003020's `preprocessed_data` files
already have exactly these rows when `tr_times` is built from `respdict.json` by `ds003020.load_stories`.

The ridge is himalaya's `RidgeCV` (the field's maintained library): one alpha per voxel, chosen by
cross-validation over whole training stories (GroupKFold; never random TRs, which leak through the
slow haemodynamic response). Backend: torch_cuda if a GPU is there, torch on CPU, numpy otherwise.
For a few hundred targets (e.g. response principal components) the same estimator is computed coefficients-first
(`ridge_cv_coefficients_first`), which needs far fewer operations than himalaya's voxel-oriented order; `solver`
chooses, and a test checks that both give the same alphas and weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qaemb_fast.voxels.features import FeatureConfig, Story, as_feature_source, story_features, zscore

FORMAT_VERSION = 1
SOLVERS = ("auto", "himalaya", "coefficients-first")
CONFIG_FILE, WEIGHTS_FILE = "voxel_encoder.json", "voxel_encoder.npz"


class VoxelDataError(ValueError):
    """Responses or feature sources that do not fit the stories or the fitted model."""


@dataclass
class VoxelEncoderConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    alphas: tuple[float, ...] = tuple(np.logspace(-1, 5, 13).tolist())  # per-voxel grid, log-spaced
    n_folds: int = 5  # story-grouped CV folds (at most the number of training stories)
    zscore_responses: bool = True  # z-score each voxel within each story (ds003020 data are already z-scored)
    backend: str = "auto"  # "auto" | "numpy" | "torch" | "torch_cuda"
    n_targets_batch: int | None = 20_000  # voxels per himalaya batch, bounds memory on 95k-voxel data
    solver: str = "auto"  # "himalaya" | "coefficients-first" | "auto": whichever needs fewer operations

    def __post_init__(self):
        if isinstance(self.features, dict):
            self.features = FeatureConfig(**self.features)
        self.alphas = tuple(float(a) for a in self.alphas)
        if not self.alphas or min(self.alphas) <= 0:
            raise ValueError("alphas must be positive")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, not {self.solver!r}")


def pearson_r(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Column-wise Pearson r: (n, V), (n, V) -> (V,); a constant column gives 0, not NaN."""
    a = y_true - y_true.mean(0)
    b = y_pred - y_pred.mean(0)
    den = np.sqrt((a * a).sum(0) * (b * b).sum(0))
    return np.divide((a * b).sum(0), den, out=np.zeros(a.shape[1]), where=den > 0)


def _pick_backend(name: str) -> str:
    if name != "auto":
        return name
    try:
        import torch
    except ImportError:
        return "numpy"
    return "torch_cuda" if torch.cuda.is_available() else "torch"


def pick_solver(solver: str, n_features: int, n_targets: int, splits, max_targets: int | None = 20_000) -> str:
    """ "auto": the solver with fewer multiply-adds per alpha and fold (see `ridge_cv_coefficients_first`), as long
    as the targets fit in one batch (`max_targets`; the coefficients-first solver does not batch them, himalaya does).
    """
    if solver != "auto":
        return solver
    if max_targets is not None and n_targets > max_targets:
        return "himalaya"
    n_val = max(len(val) for _, val in splits)
    n_train = max(len(train) for train, _ in splits)
    himalaya = n_val * n_train * (n_features + n_targets)  # (val x train) matrix, then times the targets
    coefficients_first = n_features * n_features * n_targets + n_val * n_features * n_targets
    return "coefficients-first" if coefficients_first < himalaya else "himalaya"


def ridge_cv_coefficients_first(x, y, alphas, splits):
    """Ridge with one alpha per target chosen by cross-validation: the estimator of himalaya's
    `RidgeCV(alphas, cv=splits, fit_intercept=False, local_alpha=True)` with its default score (negative mean
    squared error, averaged over folds; ties go to the larger alpha), refit on all rows with each target's alpha.

    x: (n, F), y: (n, T), alphas: (A,), splits: [(train_idx, val_idx), ...].
    Returns coef (F, T) float32, best_alphas (T,) float32, cv_scores (T,) float32 (mean CV score at the best alpha).

    Why not himalaya here: per fold it forms an (A, n_val, n_train) matrix before multiplying by the targets, the
    right order for ~95k voxels. For a few hundred targets it is ~n_train / T times more work than computing each
    alpha's coefficients first from one eigendecomposition of the fold's X'X, as here (float64 for the Gram
    matrix, whose condition number is the square of X's).
    """
    import torch

    x64, y64 = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    alphas = torch.as_tensor(np.asarray(alphas, dtype=np.float64))

    def eig(rows):
        xr = x64[rows]
        w, v = torch.linalg.eigh(xr.T @ xr)
        return w.clamp_min(0), v, v.T @ (xr.T @ y64[rows])

    scores = torch.empty((len(splits), len(alphas), y64.shape[1]), dtype=torch.float64)
    for k, (train, val) in enumerate(splits):
        w, v, vty = eig(torch.as_tensor(train))
        xv, yv = x64[torch.as_tensor(val)], y64[torch.as_tensor(val)]
        for a, alpha in enumerate(alphas):
            coef = v @ (vty / (w + alpha)[:, None])
            scores[k, a] = -((yv - xv @ coef) ** 2).sum(0) / len(val)
    mean = scores.mean(0) + (torch.log(alphas) * 1e-10)[:, None]  # himalaya's tie-break toward larger alphas
    best = mean.argmax(0)
    w, v, vty = eig(torch.arange(x64.shape[0]))
    best_alphas = alphas[best]
    coef = v @ (vty / (w[:, None] + best_alphas[None, :]))
    cv_scores = mean.gather(0, best[None, :])[0]
    return coef.float().numpy(), best_alphas.float().numpy(), cv_scores.float().numpy()


class VoxelEncoder:
    """Scikit-learn style voxelwise encoding model over any feature source (see module docstring).

    features: an encoder (teacher/student: `.questions` + `.encode`) or a feature source (features.py).
    Fitted attributes: coef_ (F * n_delays, V), best_alphas_ (V,), cv_scores_ (V,), feature_names_ (F,).
    """

    def __init__(self, features, config: VoxelEncoderConfig | None = None, **overrides):
        self.config = config or VoxelEncoderConfig()
        for k, v in overrides.items():
            target = self.config.features if hasattr(self.config.features, k) else self.config
            if not hasattr(target, k):
                raise TypeError(f"unknown VoxelEncoder option {k!r}")
            setattr(target, k, tuple(v) if k in ("delays", "alphas") else v)
        self.features = as_feature_source(features, self.config.features.context_words)

    # -------------------------------------------------------------------------------- features and responses

    def transform(self, stories) -> list[np.ndarray]:
        """Design matrices, one (n_TRs_kept, F * n_delays) float32 array per story."""
        stories = _as_stories(stories)
        if self.features is None:
            raise VoxelDataError(
                "this model was loaded without a feature source: VoxelEncoder.load(path, features=...)"
            )
        names = list(self.features.feature_names)
        if hasattr(self, "feature_names_") and len(names) != len(self.feature_names_):
            raise VoxelDataError(
                f"the feature source gives {len(names)} features (questions) but the model was fitted on "
                f"{len(self.feature_names_)}; use the same questions as at fit time"
            )
        out = []
        for s in stories:
            x = story_features(self.features, s, self.config.features)
            if x.shape[1] != len(names) * len(self.config.features.delays):
                raise VoxelDataError(
                    f"story {s.name!r}: the feature source returned {x.shape[1] // len(self.config.features.delays)} "
                    f"features but declares {len(names)} feature_names"
                )
            out.append(x)
        return out

    def _check_responses(self, stories, responses) -> list[np.ndarray]:
        if isinstance(responses, np.ndarray) and responses.ndim == 2 and len(stories) == 1:
            responses = [responses]
        if len(responses) != len(stories):
            raise VoxelDataError(f"{len(stories)} stories but {len(responses)} response arrays (give one per story)")
        n_vox = getattr(self, "n_voxels_", None)
        out = []
        for s, y in zip(stories, responses):
            y = np.asarray(y, dtype=np.float32)
            want = self.config.features.n_kept(s)
            if y.ndim != 2:
                raise VoxelDataError(f"story {s.name!r}: responses must be (TRs, voxels), got shape {y.shape}")
            if y.shape[0] != want:
                fc = self.config.features
                raise VoxelDataError(
                    f"story {s.name!r}: responses have {y.shape[0]} TRs but {want} are expected: the story has "
                    f"{s.n_trs} TR times, minus the first {fc.trim_start} and last {fc.trim_end} trimmed"
                )
            if n_vox is None:
                n_vox = y.shape[1]
            elif y.shape[1] != n_vox:
                raise VoxelDataError(f"story {s.name!r}: {y.shape[1]} voxels, expected {n_vox}")
            bad = np.flatnonzero(~np.isfinite(y).all(0))
            if bad.size:
                raise VoxelDataError(
                    f"story {s.name!r}: {bad.size} voxel(s) contain NaN/inf (first: {bad[:5].tolist()}); "
                    "drop them before fitting, e.g. keep = np.isfinite(resp).all(0) over all stories"
                )
            out.append(zscore(y).astype(np.float32) if self.config.zscore_responses else y)
        return out

    # -------------------------------------------------------------------------------- fit / predict / score

    def fit(self, stories, responses) -> VoxelEncoder:
        """stories: list of Story (>= 2, CV is over whole stories); responses: list of (n_TRs_kept, V)."""
        from himalaya.backend import get_backend, set_backend
        from himalaya.ridge import RidgeCV
        from sklearn.model_selection import GroupKFold

        stories = _as_stories(stories)
        if len(stories) < 2:
            raise VoxelDataError("fit needs at least 2 stories: the alphas are cross-validated over whole stories")
        for attr in ("feature_names_", "n_voxels_"):
            self.__dict__.pop(attr, None)  # refitting starts from scratch
        ys = self._check_responses(stories, responses)
        xs = self.transform(stories)
        x, y = np.concatenate(xs), np.concatenate(ys)
        groups = np.concatenate([np.full(len(a), i) for i, a in enumerate(xs)])
        n_folds = min(self.config.n_folds, len(stories))
        splits = list(GroupKFold(n_splits=n_folds).split(x, groups=groups))

        solver = pick_solver(self.config.solver, x.shape[1], y.shape[1], splits, self.config.n_targets_batch)
        if solver == "coefficients-first":
            self.coef_, self.best_alphas_, self.cv_scores_ = ridge_cv_coefficients_first(
                x, y, self.config.alphas, splits
            )
            self.backend_ = "torch (coefficients-first)"
            self.feature_names_ = list(self.features.feature_names)
            self.n_voxels_ = y.shape[1]
            self.train_stories_ = [s.name for s in stories]
            return self
        previous = get_backend()
        backend = set_backend(_pick_backend(self.config.backend), on_error="warn")
        try:
            model = RidgeCV(
                alphas=np.asarray(self.config.alphas),
                cv=splits,
                fit_intercept=False,  # features and responses are z-scored per story: zero mean
                solver_params=dict(
                    n_targets_batch=self.config.n_targets_batch, n_alphas_batch=None, warn=False, local_alpha=True
                ),
            )
            model.fit(backend.asarray(x), backend.asarray(y))
            self.coef_ = backend.to_numpy(model.coef_).astype(np.float32).reshape(x.shape[1], -1)
            self.best_alphas_ = backend.to_numpy(model.best_alphas_).astype(np.float32).ravel()
            self.cv_scores_ = backend.to_numpy(model.cv_scores_).astype(np.float32).ravel()
            self.backend_ = backend.name
        finally:
            set_backend(previous)
        self.feature_names_ = list(self.features.feature_names)
        self.n_voxels_ = y.shape[1]
        self.train_stories_ = [s.name for s in stories]
        return self

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise RuntimeError("this VoxelEncoder is not fitted yet: call fit(stories, responses) or load(path)")

    def predict(self, stories) -> list[np.ndarray]:
        """Predicted responses, one (n_TRs_kept, V) float32 array per story (in z-scored units)."""
        self._check_fitted()
        return [x @ self.coef_ for x in self.transform(stories)]

    def score(self, stories, responses) -> np.ndarray:
        """Pearson r per voxel (V,) between predictions and responses over all TRs of the given stories."""
        self._check_fitted()
        stories = _as_stories(stories)
        ys = self._check_responses(stories, responses)
        return pearson_r(np.concatenate(ys), np.concatenate(self.predict(stories))).astype(np.float32)

    # -------------------------------------------------------------------------------- interpretation

    def question_weights(self) -> np.ndarray:
        """(F, V) ridge weights summed over the FIR delays; features are z-scored, so weights compare across
        questions. Positive: the voxel responds more when the answer is yes."""
        self._check_fitted()
        n_delays = len(self.config.features.delays)
        return self.coef_.reshape(n_delays, len(self.feature_names_), -1).sum(0)

    def top_questions(self, voxel, k: int = 5, by: str = "abs") -> list[tuple[str, float]]:
        """The k questions with the largest weight for `voxel` (an index, or a list of indices whose weights are
        averaged: a region). by: "abs" (largest magnitude), "positive" or "negative". -> [(question, weight)]"""
        w = self.question_weights()
        idx = np.atleast_1d(np.asarray(voxel))
        if idx.size == 0 or idx.min() < -w.shape[1] or idx.max() >= w.shape[1]:
            raise IndexError(f"voxel index out of range for a model of {w.shape[1]} voxels: {voxel}")
        wv = w[:, idx].mean(1)
        key = {"abs": -np.abs(wv), "positive": -wv, "negative": wv}.get(by)
        if key is None:
            raise ValueError(f"by must be 'abs', 'positive' or 'negative', got {by!r}")
        order = np.argsort(key, kind="stable")[:k]
        return [(self.feature_names_[i], float(wv[i])) for i in order]

    # -------------------------------------------------------------------------------- persistence

    def save(self, path) -> Path:
        """Write `path/voxel_encoder.json` (config, feature names) and `path/voxel_encoder.npz` (weights)."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = dict(
            format_version=FORMAT_VERSION,
            config=asdict(self.config),
            feature_names=self.feature_names_,
            n_voxels=int(self.n_voxels_),
            train_stories=getattr(self, "train_stories_", []),
            backend=getattr(self, "backend_", None),
        )
        (path / CONFIG_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        np.savez(path / WEIGHTS_FILE, coef=self.coef_, best_alphas=self.best_alphas_, cv_scores=self.cv_scores_)
        return path

    @classmethod
    def load(cls, path, features=None) -> VoxelEncoder:
        """Load a saved model. `features` (the same encoder / feature source as at fit time) is needed for
        predict/score, not for question_weights/top_questions; its feature count must match."""
        path = Path(path)
        if not (path / CONFIG_FILE).exists() or not (path / WEIGHTS_FILE).exists():
            raise FileNotFoundError(f"{path}: not a saved VoxelEncoder (need {CONFIG_FILE} and {WEIGHTS_FILE})")
        meta = json.loads((path / CONFIG_FILE).read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise VoxelDataError(f"{path}: format version {meta.get('format_version')}, expected {FORMAT_VERSION}")
        self = cls.__new__(cls)
        self.config = VoxelEncoderConfig(**meta["config"])
        self.feature_names_ = list(meta["feature_names"])
        self.n_voxels_ = meta["n_voxels"]
        self.train_stories_ = meta.get("train_stories", [])
        self.backend_ = meta.get("backend")
        with np.load(path / WEIGHTS_FILE, allow_pickle=False) as z:
            self.coef_, self.best_alphas_, self.cv_scores_ = z["coef"], z["best_alphas"], z["cv_scores"]
        want = (len(self.feature_names_) * len(self.config.features.delays), self.n_voxels_)
        if self.coef_.shape != want:
            raise VoxelDataError(f"{path}: weights have shape {self.coef_.shape}, the config says {want}")
        self.features = None
        if features is not None:
            self.set_features(features)
        return self

    def set_features(self, features) -> VoxelEncoder:
        """Attach the feature source of a loaded model; it must give the fitted number of features."""
        src = as_feature_source(features, self.config.features.context_words)
        names = list(src.feature_names)
        if hasattr(self, "feature_names_") and len(names) != len(self.feature_names_):
            raise VoxelDataError(
                f"the feature source has {len(names)} questions but the model was fitted on {len(self.feature_names_)}"
            )
        if hasattr(self, "feature_names_") and names != self.feature_names_:
            diff = next(i for i, (a, b) in enumerate(zip(names, self.feature_names_)) if a != b)
            raise VoxelDataError(
                f"the feature source's question #{diff} is {names[diff]!r}, the model's is "
                f"{self.feature_names_[diff]!r}: use the questions the model was fitted on, in the same order"
            )
        self.features = src
        return self

    def __repr__(self):
        fitted = f", {self.n_voxels_} voxels" if hasattr(self, "n_voxels_") else ", not fitted"
        n = len(self.feature_names_) if hasattr(self, "feature_names_") else len(self.features.feature_names)
        return f"VoxelEncoder({n} features x {len(self.config.features.delays)} delays{fitted})"


def _as_stories(stories) -> list[Story]:
    if isinstance(stories, Story):
        stories = [stories]
    stories = list(stories)
    if not stories:
        raise VoxelDataError("no stories given")
    bad = [type(s).__name__ for s in stories if not isinstance(s, Story)]
    if bad:
        raise TypeError(f"expected Story objects, got {bad[0]}")
    return stories
