"""Stimulus features per TR, following the Huth-lab / LeBel et al. 2023 conventions exactly (DESIGN.md §4).

    words ──► feature source ──► (n_words, F) ──► Lanczos to TR times ──► trim ──► z-score ──► FIR delays
                                                   (window 3, 1/TR)        10/5    per story   1..4 TRs

A *feature source* turns a story's words into one row per word:
- `ContextWindowAnswers(encoder)`: any object with the shared encoder protocol (`.questions`,
  `encode(texts, ...) -> (n, Q)`), teacher or student, answers each word's context window (the word plus the
  preceding 10, as in the paper); repeated windows are answered once (cache).
- `WordRate()`: a column of ones (the field's word-rate baseline).
- `WordEmbedding(vectors)`: a static per-word lookup (Eng1000, or the co-occurrence look-alike in
  `evaluation.voxels_synthetic`).

Anything with `.feature_names` (list of F str) and `word_features(story) -> (n_words, F)` works as a source.

Word rate: the Lanczos weights are not normalised (their sum over the words near a TR grows with the number of
words there), so every downsampled feature is proportional to word rate as well as to its own value. This is
the reference convention and we keep it; it is why a word-rate baseline and a random-answers baseline must be
reported next to any feature space (random features reach r ~0.14 on the top 1 % of voxels on real data).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qaemb_fast.answer_table import AnswerTable  # noqa: F401  (re-exported: looked-up answers as a feature source)
from qaemb_fast.texts import context_windows


class StoryError(ValueError):
    """A story whose words, word times or TR times are inconsistent."""


@dataclass
class Story:
    """One stimulus story.

    words: the spoken words in order (n_words,); word_times: seconds, the middle of each word's interval
    (n_words,), non-decreasing; tr_times: seconds on the same clock, the middle of each acquired TR
    (n_trs,), strictly increasing (Huth lab: trigger time + TR/2). Responses for this story must have
    `n_trs - trim_start - trim_end` rows: the TRs left after trimming (see `FeatureConfig`).
    """

    name: str
    words: list[str]
    word_times: np.ndarray
    tr_times: np.ndarray

    def __post_init__(self):
        self.words = list(self.words)
        self.word_times = np.asarray(self.word_times, dtype=np.float64)
        self.tr_times = np.asarray(self.tr_times, dtype=np.float64)
        where = f"story {self.name!r}"
        if not self.words:
            raise StoryError(f"{where}: no words")
        bad = [i for i, w in enumerate(self.words) if not isinstance(w, str)]
        if bad:
            raise StoryError(f"{where}: words must be strings; word #{bad[0]} is {type(self.words[bad[0]]).__name__}")
        if self.word_times.ndim != 1 or len(self.word_times) != len(self.words):
            raise StoryError(
                f"{where}: {len(self.words)} words but word_times has shape {self.word_times.shape}; "
                "give one time (the middle of the word) per word"
            )
        if not np.all(np.isfinite(self.word_times)):
            raise StoryError(f"{where}: word_times contain NaN or inf")
        back = np.flatnonzero(np.diff(self.word_times) < 0)
        if back.size:
            i = int(back[0]) + 1
            raise StoryError(
                f"{where}: word times must be increasing, but word #{i} ({self.words[i]!r}) at "
                f"{self.word_times[i]:.3f} s comes before word #{i - 1} ({self.words[i - 1]!r}) at "
                f"{self.word_times[i - 1]:.3f} s ({back.size} such place(s))"
            )
        if self.tr_times.ndim != 1 or len(self.tr_times) < 2:
            raise StoryError(f"{where}: need at least 2 TR times, got shape {self.tr_times.shape}")
        if not np.all(np.isfinite(self.tr_times)) or np.any(np.diff(self.tr_times) <= 0):
            raise StoryError(f"{where}: tr_times must be finite and strictly increasing")

    @property
    def n_trs(self) -> int:
        return len(self.tr_times)


@dataclass
class FeatureConfig:
    """How word-level features become the (n_TRs_kept, F * n_delays) design matrix of one story."""

    context_words: int = 10  # preceding words added to each word's window (paper: 10 -> 11-word windows)
    lanczos_window: int = 3  # lobes of the Lanczos kernel (reference: 3)
    cutoff_mult: float = 1.0  # cutoff = cutoff_mult / TR (reference: 1.0)
    trim_start: int = 10  # TRs dropped at the start (reference: feat[5 + trim:] with trim = 5)
    trim_end: int = 5  # TRs dropped at the end (reference: feat[:-trim])
    delays: tuple[int, ...] = (1, 2, 3, 4)  # FIR delays in TRs (reference: 1..4; the paper also used 1..8)

    def __post_init__(self):
        self.delays = tuple(int(d) for d in self.delays)
        if not self.delays:
            raise ValueError("FeatureConfig.delays: need at least one delay")
        if self.context_words < 0 or self.trim_start < 0 or self.trim_end < 0 or self.lanczos_window < 1:
            raise ValueError(f"invalid FeatureConfig: {self}")

    def n_kept(self, story: Story) -> int:
        """Number of TRs of `story` left after trimming: the rows its responses must have."""
        return story.n_trs - self.trim_start - self.trim_end


# ------------------------------------------------------------------------------------------------------------
# The three transformations, each checked against hand-computed cases in tests/test_voxels.py


def lanczos_kernel(t: np.ndarray, cutoff: float, window: int = 3) -> np.ndarray:
    """Huth lab `lanczosfun`: with x = t * cutoff,

        L(x) = window * sin(pi x) * sin(pi x / window) / (pi x)^2   for 0 < |x| <= window,
        L(0) = 1,   L(x) = 0 for |x| > window.

    t: time differences in seconds (any shape); cutoff in Hz.
    """
    x = np.asarray(t, dtype=np.float64) * cutoff
    with np.errstate(divide="ignore", invalid="ignore"):
        val = window * np.sin(np.pi * x) * np.sin(np.pi * x / window) / (np.pi**2 * x**2)
    val[x == 0] = 1.0
    val[np.abs(x) > window] = 0.0
    return val


def lanczos_interp(data, old_times, new_times, window: int = 3, cutoff_mult: float = 1.0) -> np.ndarray:
    """Huth lab `lanczosinterp2D`: downsample rows of `data` at `old_times` to `new_times`.

    newdata[i] = sum_j L(new_times[i] - old_times[j]) * data[j],  cutoff = cutoff_mult / mean(diff(new_times)).

    The weights are deliberately not normalised (see the module docstring: features carry word rate).
    data: (n_old, F) -> (n_new, F) float64.
    """
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    old_times, new_times = np.asarray(old_times, dtype=np.float64), np.asarray(new_times, dtype=np.float64)
    if len(old_times) != data.shape[0]:
        raise ValueError(f"lanczos_interp: {data.shape[0]} rows of data but {len(old_times)} times")
    if len(new_times) < 2:
        raise ValueError("lanczos_interp: need at least 2 new times to set the cutoff (1 / their spacing)")
    cutoff = cutoff_mult / np.mean(np.diff(new_times))
    weights = lanczos_kernel(new_times[:, None] - old_times[None, :], cutoff, window)  # (n_new, n_old)
    return weights @ data


def zscore(x: np.ndarray) -> np.ndarray:
    """Column-wise z-score (population std, as the reference `npp.zscore`); constant columns become 0."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    return np.divide(x - x.mean(axis=0), std, out=np.zeros_like(x), where=std > 0)


def make_delayed(x: np.ndarray, delays) -> np.ndarray:
    """FIR design matrix, Huth lab `make_delayed`: [x shifted down by d TRs, zero-padded, for d in delays].

    x: (n, F) -> (n, F * len(delays)); block k holds x delayed by delays[k] (column index k * F + f).
    A positive delay d means row t sees the stimulus of TR t - d (the BOLD response lags the stimulus).
    """
    x = np.asarray(x)
    n = x.shape[0]
    blocks = []
    for d in delays:
        out = np.zeros_like(x)
        if d > 0:
            out[d:] = x[: max(n - d, 0)]
        elif d < 0:
            out[:d] = x[-d:]
        else:
            out[:] = x
        blocks.append(out)
    return np.hstack(blocks)


# ------------------------------------------------------------------------------------------------------------
# Feature sources


@dataclass
class ContextWindowAnswers:
    """Feature source: an encoder's answers (n_words, Q) to each word's context window.

    encoder: teacher or student with `.questions` and `encode(texts, batch_size=..., show_progress_bar=...)`.
    Unique windows are encoded once and cached for the lifetime of this object (stories share windows, and
    fit / score / benchmark runs featurise the same stories more than once).
    """

    encoder: object
    context_words: int = 10
    batch_size: int = 32
    show_progress_bar: bool | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if not hasattr(self.encoder, "encode") or not hasattr(self.encoder, "questions"):
            raise TypeError(
                f"{type(self.encoder).__name__} is not an encoder: it needs `.questions` and `.encode(texts)`"
            )

    @property
    def feature_names(self) -> list[str]:
        return list(self.encoder.questions)

    def answer(self, texts) -> np.ndarray:
        """(n, Q) answers for `texts`, encoding only the ones not seen before."""
        todo = sorted({t for t in texts if t not in self._cache})
        q = len(self.feature_names)
        if todo:
            out = np.asarray(
                self.encoder.encode(todo, batch_size=self.batch_size, show_progress_bar=self.show_progress_bar)
            )
            if out.ndim != 2 or out.shape != (len(todo), q):
                raise ValueError(
                    f"the encoder returned shape {out.shape} for {len(todo)} texts, expected ({len(todo)}, {q}): "
                    "its `.questions` and its answers disagree"
                )
            self._cache.update(zip(todo, out.astype(np.float32)))
        return np.stack([self._cache[t] for t in texts]) if len(texts) else np.zeros((0, q), np.float32)

    def word_features(self, story: Story) -> np.ndarray:
        return self.answer(context_windows(story.words, self.context_words))


class WordRate:
    """Feature source: one column of ones per word; after Lanczos it is the word rate per TR."""

    feature_names = ["word rate"]

    def word_features(self, story: Story) -> np.ndarray:
        return np.ones((len(story.words), 1), dtype=np.float32)


class WordEmbedding:
    """Feature source: a static vector per word (Eng1000 convention: lower-cased lookup, unknown words -> 0).

    vectors: dict word -> (F,) array; names: optional F feature names (default "dim 0" ...).
    """

    def __init__(self, vectors: dict, names=None):
        if not vectors:
            raise ValueError("WordEmbedding: empty vocabulary")
        dims = {np.shape(v) for v in vectors.values()}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise ValueError(f"WordEmbedding: all vectors must be 1-D of the same length, got shapes {dims}")
        self.dim = next(iter(dims))[0]
        self.vectors = {w.lower(): np.asarray(v, dtype=np.float32) for w, v in vectors.items()}
        self.feature_names = list(names) if names is not None else [f"dim {i}" for i in range(self.dim)]
        if len(self.feature_names) != self.dim:
            raise ValueError(f"WordEmbedding: {len(self.feature_names)} names for {self.dim} dimensions")
        self._zero = np.zeros(self.dim, dtype=np.float32)

    def word_features(self, story: Story) -> np.ndarray:
        return np.stack([self.vectors.get(w.lower(), self._zero) for w in story.words])


def as_feature_source(source, context_words: int = 10):
    """An encoder-protocol object becomes `ContextWindowAnswers`; a feature source is returned as it is."""
    if hasattr(source, "word_features") and hasattr(source, "feature_names"):
        return source
    if hasattr(source, "encode") and hasattr(source, "questions"):
        return ContextWindowAnswers(source, context_words=context_words)
    raise TypeError(
        f"{type(source).__name__} is neither an encoder (`.questions` + `.encode`) nor a feature source "
        "(`.feature_names` + `.word_features(story)`)"
    )


def story_features(source, story: Story, config: FeatureConfig) -> np.ndarray:
    """The design matrix of one story: (config.n_kept(story), F * len(config.delays)), float32.

    Per the reference: downsample (Lanczos) -> trim -> z-score within the story -> FIR delays. Delays are
    applied within the story, zero-padded (the reference stacks stories first, so its first delayed rows of a
    story see the end of the previous one; per story is the clean version of the same model).
    """
    if config.n_kept(story) < 1:
        raise StoryError(
            f"story {story.name!r}: {story.n_trs} TRs leave nothing after trimming "
            f"{config.trim_start} + {config.trim_end}"
        )
    words = np.asarray(source.word_features(story))
    if words.ndim != 2 or words.shape[0] != len(story.words):
        raise ValueError(
            f"story {story.name!r}: the feature source returned {words.shape} for {len(story.words)} words"
        )
    if not np.all(np.isfinite(words)):
        raise ValueError(f"story {story.name!r}: the feature source returned NaN or inf")
    per_tr = lanczos_interp(words, story.word_times, story.tr_times, config.lanczos_window, config.cutoff_mult)
    kept = per_tr[config.trim_start : story.n_trs - config.trim_end]
    return make_delayed(zscore(kept), config.delays).astype(np.float32)
