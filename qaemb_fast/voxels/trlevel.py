"""Read story-listening fMRI data exported at the TR level (words per TR, one response row per TR).

Layout (under the data root; e.g. the real-fmri export of OpenNeuro ds003020, 200 response PCs per TR)::

    stories.json                       # {subject: {split: [story, ...]}}, e.g. {"UTS01": {"train": [...], "test": [...]}}
    texts/<story>.json                 # one string per TR: the words heard during that TR ("" for a silent TR)
    <subject>/<split>/<story>.npy      # (n_TR, targets) float16, row i = TR i of texts/<story>.json

    stories, responses = load_trlevel("real-fmri", "UTS01", split="train")
    enc = VoxelEncoder(student, VoxelEncoderConfig(features=trlevel_feature_config())).fit(stories, responses)

Why no trimming here: the export has already dropped the first 10 and last 5 TRs of each scan (the field's
convention), so row i of a response file is TR i of its text file. `FeatureConfig` trims 10 + 5 by default (it
is built for ds003020's raw TR clock), so TR-level data need `trlevel_feature_config()` (trim_start = trim_end = 0);
with the defaults every story's responses would be 15 rows too long for the encoder, which it reports.

Word times (the TR-level text gives which TR a word was heard in, not when): TR i spans [i * TR, (i + 1) * TR);
its time is its middle, tr_times[i] = (i + 0.5) * TR; the n words of TR i are spread evenly inside it, word j
(0-based) at i * TR + (j + 0.5) / n * TR. Empty TRs have no words. The word-level pipeline (context windows,
Lanczos to TR times, delays, z-scoring) then applies unchanged. TR is ds003020's scanner TR (2.0045 s); its value
does not change the features: the Lanczos cutoff is 1 / TR, so word and TR times scaled by TR give the same
kernel weights for any TR. Only the clock is kept on the dataset's seconds.

Known approximation: the export keeps no text for the trimmed TRs, so the words of the first kept TRs have
shorter context windows than in the recording, and the Lanczos filter sees no words before TR 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qaemb_fast.voxels.ds003020 import TR, DatasetLayoutError
from qaemb_fast.voxels.features import FeatureConfig, Story

STORIES_FILE, TEXTS_DIR = "stories.json", "texts"


def trlevel_feature_config(**overrides) -> FeatureConfig:
    """A fresh `FeatureConfig` for TR-level data: no trimming (the export is already trimmed), other fields as
    given (defaults: 10 context words, Lanczos window 3, delays 1-4). A function, not a constant: `VoxelEncoder`
    options edit its config in place, and a shared module-level config would carry one run's edits into the next."""
    return FeatureConfig(**{"trim_start": 0, "trim_end": 0, **overrides})


# ------------------------------------------------------------------------------------------------------------
# The index: subjects, splits, stories


def read_index(root) -> dict[str, dict[str, list[str]]]:
    """stories.json as {subject: {split: [story, ...]}}, checked for shape."""
    path = Path(root) / STORIES_FILE
    if not path.exists():
        raise DatasetLayoutError(f"{path}: not found; is {root} a TR-level data folder (stories.json, texts/, ...)?")
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetLayoutError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    ok = isinstance(index, dict) and all(
        isinstance(splits, dict)
        and all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in splits.values())
        for splits in index.values()
    )
    if not ok:
        raise DatasetLayoutError(
            f'{path}: expected {{subject: {{split: [story, ...]}}}}, e.g. {{"UTS01": {{"train": [...]}}}}'
        )
    return index


def list_subjects(root) -> list[str]:
    """Subjects in stories.json, sorted."""
    return sorted(read_index(root))


def list_splits(root, subject: str) -> dict[str, list[str]]:
    """{split: [story, ...]} of one subject (e.g. {"train": [...93 stories], "test": [...3]})."""
    index = read_index(root)
    if subject not in index:
        raise DatasetLayoutError(
            f"{Path(root) / STORIES_FILE}: no subject {subject!r}; subjects there: {', '.join(sorted(index)) or 'none'}"
        )
    return {split: list(names) for split, names in index[subject].items()}


def list_trlevel_stories(root, subject: str, split: str | None = None) -> list[str]:
    """The stories of a subject in one split (None: all splits, in stories.json order)."""
    splits = list_splits(root, subject)
    if split is None:
        return [s for names in splits.values() for s in names]
    if split not in splits:
        raise DatasetLayoutError(
            f"{Path(root) / STORIES_FILE}: subject {subject!r} has no split {split!r}; splits: {', '.join(splits)}"
        )
    return list(splits[split])


# ------------------------------------------------------------------------------------------------------------
# Stories and responses


def read_tr_texts(root, story: str) -> list[str]:
    """texts/<story>.json: one string per TR."""
    path = Path(root) / TEXTS_DIR / f"{story}.json"
    if not path.exists():
        raise DatasetLayoutError(f"{path}: missing text file for story {story!r}")
    texts = json.loads(path.read_text())
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise DatasetLayoutError(f"{path}: expected a JSON list with one string per TR")
    return texts


def story_from_tr_texts(name: str, tr_texts, tr: float = TR) -> Story:
    """A Story from one string per TR, word times spread evenly inside each TR (module docstring).

    tr_texts: n_TR strings (words separated by whitespace; "" for a TR without words) -> Story with n_TR TR times.
    """
    words, times = [], []
    for i, text in enumerate(tr_texts):
        ws = text.split()
        words += ws
        times += [(i + (j + 0.5) / len(ws)) * tr for j in range(len(ws))]
    return Story(name, words, np.asarray(times), (np.arange(len(tr_texts)) + 0.5) * tr)


def load_trlevel_stories(root, stories, tr: float = TR) -> list[Story]:
    """Story objects for the named stories (texts/<story>.json), no trimming."""
    out = []
    for name in stories:
        texts = read_tr_texts(root, name)
        if not any(t.split() for t in texts):
            raise DatasetLayoutError(f"{Path(root) / TEXTS_DIR / f'{name}.json'}: story {name!r} has no words at all")
        if len(texts) < 2:
            raise DatasetLayoutError(f"{Path(root) / TEXTS_DIR / f'{name}.json'}: {len(texts)} TR(s); need at least 2")
        out.append(story_from_tr_texts(name, texts, tr))
    return out


def _story_split(root, subject: str, story: str, split: str | None) -> str:
    splits = list_splits(root, subject)
    where = [s for s, names in splits.items() if story in names]
    if split is not None:
        if split not in splits:
            raise DatasetLayoutError(
                f"{Path(root) / STORIES_FILE}: subject {subject!r} has no split {split!r}; splits: {', '.join(splits)}"
            )
        if split not in where:
            raise DatasetLayoutError(
                f"{Path(root) / STORIES_FILE}: story {story!r} is not in the {split!r} split of subject {subject!r}"
                + (f" (it is in {', '.join(where)})" if where else "")
            )
        return split
    if not where:
        raise DatasetLayoutError(f"{Path(root) / STORIES_FILE}: story {story!r} is not listed for subject {subject!r}")
    return where[0]


def load_trlevel_responses(root, subject: str, stories, split: str | None = None, n_trs=None) -> list[np.ndarray]:
    """(n_TR, targets) float32 arrays from <subject>/<split>/<story>.npy (stored as float16).

    split: where to look (None: the split stories.json lists the story in). n_trs: optional expected row count per
    story (the TR count of its text file); a different count, or a row with NaN/inf, is an error naming the file.
    """
    root = Path(root)
    out = []
    for k, name in enumerate(stories):
        path = root / subject / _story_split(root, subject, name, split) / f"{name}.npy"
        if not path.exists():
            raise DatasetLayoutError(f"{path}: missing response file for subject {subject!r}, story {name!r}")
        y = np.load(path, allow_pickle=False)
        if y.ndim != 2:
            raise DatasetLayoutError(f"{path}: responses have shape {y.shape}, expected (TRs, targets)")
        if n_trs is not None and y.shape[0] != n_trs[k]:
            raise DatasetLayoutError(
                f"{path}: {y.shape[0]} response rows but texts/{name}.json has {n_trs[k]} TRs (one row per TR expected)"
            )
        y = y.astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(y).all(1))
        if bad.size:
            raise DatasetLayoutError(f"{path}: {bad.size} row(s) contain NaN or inf (first: TR {bad[0]})")
        out.append(y)
    return out


def load_trlevel(root, subject: str, split: str | None = None, stories=None, tr: float = TR):
    """(stories, responses) of one subject, ready for `VoxelEncoder` with `trlevel_feature_config()`.

    split: "train", "test" (or any split in stories.json), None for all; stories: optional names (each must be
    listed for the subject, in `split` if given). -> list of Story, list of (n_TR, targets) float32.
    """
    names = list_trlevel_stories(root, subject, split) if stories is None else list(stories)
    if not names:
        raise DatasetLayoutError(f"{Path(root) / STORIES_FILE}: no stories for subject {subject!r}, split {split!r}")
    for name in names:
        _story_split(root, subject, name, split)  # listed? (before reading any file)
    st = load_trlevel_stories(root, names, tr)
    return st, load_trlevel_responses(root, subject, names, split, n_trs=[s.n_trs for s in st])


__all__ = [
    "list_splits",
    "list_subjects",
    "list_trlevel_stories",
    "load_trlevel",
    "load_trlevel_responses",
    "load_trlevel_stories",
    "read_index",
    "story_from_tr_texts",
    "trlevel_feature_config",
]
