"""Read the LeBel et al. 2023 story-listening dataset (OpenNeuro ds003020) from a local copy.

Layout (under the dataset root)::

    derivative/TextGrids/<story>.TextGrid                   # Praat TextGrid: "phone" and "word" tiers
    derivative/respdict.json                                # {story: number of TRs}
    derivative/preprocessed_data/<subject>/<story>.hf5      # key "data": (TRs kept, voxels) float

Conventions (Huth lab `deep-fMRI-dataset`, as the QA-Emb paper used them):
- words: the word tier, lower-cased, fillers dropped (sp, sentence_start, sentence_end, {LG}, {NS}, br, ls,
  and empty intervals); each word stamped at the middle of its interval.
- TR times: the reference simulates the scanner clock from respdict: `respdict[story] - 5` TRs, the sound
  starting 10 s after the first trigger, each TR stamped at its middle: t_k = k * TR - 10 + TR / 2.
  The response files then hold the `respdict[story] - 20` TRs left after trimming 10 + 5 of those
  (`FeatureConfig` defaults), which `VoxelEncoder` checks.
- TR = 2.0045 s (the scanner's). The reference code simulates with 2.0 s; pass `tr=2.0` to reproduce it
  bit for bit (the difference drifts by 1.4 s over a 300-TR story).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from qaemb_fast.voxels.features import Story

TR = 2.0045
FILLERS = frozenset({"sentence_start", "sentence_end", "br", "lg", "ls", "ns", "sp", ""})


class DatasetLayoutError(ValueError):
    """A local ds003020 copy with missing or malformed files."""


# ------------------------------------------------------------------------------------------------------------
# TextGrid

# Praat writes the same values in both text formats; the long one adds `key =` labels and `item [1]:` headers.
# Reading only the values (quoted strings, numbers, <exists>) parses both with one grammar.
_TOKEN = re.compile(
    r'"((?:[^"]|"")*)"'  # a string; "" inside is an escaped quote
    r"|(\[[^\]\n]*\])"  # [1] item / interval indices (long format): skipped
    r"|(<exists>|<absent>)"
    r"|([A-Za-z_][\w?]*)"  # labels (xmin, intervals, size, tiers?): skipped
    r"|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(!.*)"  # comments: skipped
    r"|\S",  # '=' ':' and anything else: skipped
)


def _values(text: str) -> list:
    out = []
    for m in _TOKEN.finditer(text):
        string, _, flag, _, number, _ = m.groups()
        if string is not None:
            out.append(string.replace('""', '"'))
        elif flag is not None:
            out.append(flag)
        elif number is not None:
            out.append(float(number))
    return out


def read_textgrid(path) -> dict[str, list[tuple[float, float, str]]]:
    """Parse a Praat TextGrid (long or short text format) -> {tier name: [(xmin, xmax, text), ...]}.

    Point tiers (TextTier) give (time, time, mark). Files written as UTF-16 (Praat's choice for non-ASCII
    text) are detected from their byte-order mark.
    """
    raw = Path(path).read_bytes()
    text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig", "replace")
    vals = _values(text)
    where = f"{path}: not a Praat TextGrid"
    if len(vals) < 5 or vals[0] != "ooTextFile" or vals[1] != "TextGrid":
        raise DatasetLayoutError(f"{where} (expected 'File type = \"ooTextFile\"' and 'Object class = \"TextGrid\"')")
    try:
        pos = 4  # ooTextFile, TextGrid, xmin, xmax
        if vals[pos] == "<absent>":
            return {}
        n_tiers = int(vals[pos + 1])
        pos += 2
        tiers = {}
        for _ in range(n_tiers):
            cls, name, _, _, n = vals[pos : pos + 5]
            pos += 5
            rows = []
            for _ in range(int(n)):
                if cls == "IntervalTier":
                    a, b, label = vals[pos : pos + 3]
                    pos += 3
                elif cls == "TextTier":
                    a, label = vals[pos : pos + 2]
                    b = a
                    pos += 2
                else:
                    raise DatasetLayoutError(f"{path}: unknown tier class {cls!r}")
                rows.append((float(a), float(b), str(label)))
            tiers[str(name)] = rows
    except (ValueError, TypeError, IndexError) as e:
        if isinstance(e, DatasetLayoutError):
            raise
        raise DatasetLayoutError(f"{where} or truncated ({e})") from e
    return tiers


def textgrid_words(path, fillers=FILLERS) -> tuple[list[str], np.ndarray]:
    """(words, word_times) from a TextGrid's word tier, reference conventions (module docstring)."""
    tiers = read_textgrid(path)
    by_lower = {k.lower().strip(): k for k in tiers}
    name = by_lower.get("word") or by_lower.get("words")
    if name is None:
        # The reference takes the second tier (phones first, words second) without looking at names.
        if len(tiers) != 2:
            raise DatasetLayoutError(f"{path}: no tier named 'word' among {list(tiers)}")
        name = list(tiers)[1]
    words, times = [], []
    for a, b, label in tiers[name]:
        w = label.strip().lower()
        if w.strip("{}").strip() in fillers:
            continue
        words.append(w)
        times.append((a + b) / 2.0)
    if not words:
        raise DatasetLayoutError(f"{path}: the word tier {name!r} has no words after dropping fillers")
    return words, np.asarray(times)


# ------------------------------------------------------------------------------------------------------------
# Stories and responses


def simulated_tr_times(n_trs_total: int, tr: float = TR, start_time: float = 10.0, pad: int = 5) -> np.ndarray:
    """Reference `load_simulated_trfiles` + `DataSequence.from_grid`: n_trs_total - pad TR middles on the
    sound's clock, t_k = k * tr - start_time + tr / 2."""
    n = int(n_trs_total) - pad
    if n < 2:
        raise DatasetLayoutError(f"{n_trs_total} TRs is too few (need more than {pad + 1})")
    return np.arange(n) * tr - start_time + tr / 2.0


def list_stories(root, subject: str | None = None) -> list[str]:
    """Stories with a TextGrid and a respdict entry (and, given a subject, a response file), sorted."""
    root = Path(root)
    grids = {p.stem for p in (root / "derivative" / "TextGrids").glob("*.TextGrid")}
    names = grids & set(_respdict(root))
    if subject is not None:
        names &= {p.stem for p in (root / "derivative" / "preprocessed_data" / subject).glob("*.hf5")}
    return sorted(names)


def _respdict(root: Path) -> dict:
    path = root / "derivative" / "respdict.json"
    if not path.exists():
        raise DatasetLayoutError(f"{root}: no derivative/respdict.json; is this the ds003020 root folder?")
    return json.loads(path.read_text())


def load_stories(root, stories=None, tr: float = TR) -> list[Story]:
    """Story objects (words, word times, simulated TR times) for `stories` (default: all with a TextGrid)."""
    root = Path(root)
    respdict = _respdict(root)
    names = list_stories(root) if stories is None else list(stories)
    if not names:
        raise DatasetLayoutError(f"{root}: no stories with both a TextGrid and a respdict.json entry")
    out = []
    for name in names:
        grid = root / "derivative" / "TextGrids" / f"{name}.TextGrid"
        if not grid.exists():
            raise DatasetLayoutError(f"{grid}: missing TextGrid for story {name!r}")
        if name not in respdict:
            raise DatasetLayoutError(f"story {name!r} is not in derivative/respdict.json")
        words, times = textgrid_words(grid)
        out.append(Story(name, words, times, simulated_tr_times(respdict[name], tr)))
    return out


def load_responses(root, subject: str, stories, voxels=None) -> list[np.ndarray]:
    """(TRs, V) float32 arrays from preprocessed_data/<subject>/<story>.hf5 (key "data").

    voxels: optional indices (or boolean mask) to read a subset; each full file is ~100 MB.
    """
    import h5py

    root = Path(root)
    names = [s.name if isinstance(s, Story) else s for s in stories]
    sel = None if voxels is None else np.asarray(voxels)
    if sel is not None and sel.dtype == bool:
        sel = np.flatnonzero(sel)
    out = []
    for name in names:
        path = root / "derivative" / "preprocessed_data" / subject / f"{name}.hf5"
        if not path.exists():
            raise DatasetLayoutError(f"{path}: no response file for subject {subject!r}, story {name!r}")
        with h5py.File(path, "r") as f:
            if "data" not in f:
                raise DatasetLayoutError(f"{path}: no 'data' dataset (has {list(f.keys())})")
            d = f["data"]
            if d.ndim != 2:
                raise DatasetLayoutError(f"{path}: 'data' has shape {d.shape}, expected (TRs, voxels)")
            arr = d[:] if sel is None else d[:, np.sort(sel)]
        out.append(np.asarray(arr, dtype=np.float32))
    return out


def load_ds003020(root, subject: str, stories=None, tr: float = TR, voxels=None):
    """(stories, responses) for one subject, ready for `VoxelEncoder.fit` / `.score`."""
    names = list_stories(root, subject) if stories is None else list(stories)
    if not names:
        raise DatasetLayoutError(f"{root}: no stories for subject {subject!r}")
    st = load_stories(root, names, tr)
    return st, load_responses(root, subject, names, voxels)


def load_eng1000(path):
    """Eng1000 word vectors (Huth et al. 2016, `english1000sm.hf5`: "data" (985, n_words), "vocab" (n_words,))
    as a WordEmbedding feature source (lower-cased lookup, unknown words -> zeros, as the reference)."""
    import h5py

    from qaemb_fast.voxels.features import WordEmbedding

    with h5py.File(path, "r") as f:
        if "data" not in f or "vocab" not in f:
            raise DatasetLayoutError(f"{path}: expected 'data' and 'vocab' datasets, found {list(f.keys())}")
        data, vocab = np.asarray(f["data"][:], dtype=np.float32), f["vocab"][:]
    vocab = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in vocab]
    if data.shape[0] == len(vocab) and data.shape[1] != len(vocab):
        data = data.T  # stored (n_words, dims): accept it
    if data.ndim != 2 or data.shape[1] != len(vocab):
        raise DatasetLayoutError(f"{path}: data {data.shape} does not match {len(vocab)} vocabulary words")
    return WordEmbedding(dict(zip(vocab, data.T)), names=[f"eng1000 {i}" for i in range(data.shape[0])])
