"""Corpora for the teacher: what texts get labelled, and which document each text belongs to.

The labeller consumes a plain list of `CorpusItem(text, doc_id)`. The document id is what keeps a train/test
split honest: overlapping context windows from one chapter must never land on both sides of a split, so every
reader here assigns one (a chapter, a story file, a paragraph, a row).

Three kinds of input:

1. Files (`read_corpus`): .txt, .csv, .jsonl, or a `datasets` dataset saved with `save_to_disk`, or a folder
   of such files. Rules for .txt (documented here once):
   - without `windows`: every non-empty line is one text. Blank lines split the file into paragraphs and a
     paragraph is a document (doc id `stem:K`, K = paragraph index); a file without blank lines has one
     document per line (doc id `stem:K`, K = line index among non-empty lines).
   - with `windows=N`: the whole file is one word stream (a story), turned into context windows; the file
     is one document (doc id = file stem). For .csv/.jsonl/datasets, each row's text is its own word stream
     and its windows keep the row's doc id.
2. Context windows (`word_stream_to_items`, on `qaemb_fast.texts.context_windows`): the paper's "10-grams",
   each word plus the preceding 10 words.
3. The real offline texts of DESIGN.md §3, installed without R (`fetch_offline_corpora`): Jane Austen's six
   novels (r-cran-janeaustenr), Moby Dick (r-cran-tokenizers) and the WordNet example sentences
   (wordnet-base). `build_default_corpus` mixes them into the default student's training corpus.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from qaemb_fast.texts import TextFileError, context_windows, read_jsonl
from qaemb_fast.texts import read_text_file as _decode_text_file


@dataclass(frozen=True)
class CorpusItem:
    """One text to label and the document it comes from (splits are made by document)."""

    text: str
    doc_id: str


class CorpusError(ValueError):
    """A corpus that cannot be read: missing file, unknown format, missing field, nothing to label."""


# ----------------------------------------------------------------------------------------------------------------
# Context windows


def word_stream_to_items(words, doc_id: str, size: int = 10, stride: int = 1, offset: int = 0) -> list[CorpusItem]:
    """Context windows (`qaemb_fast.texts.context_windows`) ending at words offset, offset + stride, ... of one
    document, as CorpusItems.

    stride > 1 keeps every stride-th window (fewer near-duplicate overlapping windows); offset = size keeps only
    full-length windows.
    """
    try:
        windows = context_windows(words, size, start=offset, step=stride)
    except ValueError as e:
        raise CorpusError(str(e)) from None
    return [CorpusItem(w, str(doc_id)) for w in windows]


def corpus_hash(items) -> str:
    """'sha256:<hex>' over the (text, doc_id) pairs in order: the corpus identity stored in the provenance."""
    h = hashlib.sha256()
    for it in items:
        # JSON of the pair is unambiguous (no separator that a text could contain).
        h.update(json.dumps([it.text, it.doc_id], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# Reading files

SUPPORTED = (".txt", ".csv", ".jsonl")
DOC_ID_FIELD = "doc_id"  # used as the doc id when present and no doc_field is given


def read_corpus(
    path, text_field: str = "text", doc_field: str | None = None, windows: int | None = None, stride: int = 1
) -> list[CorpusItem]:
    """Read a corpus from a .txt/.csv/.jsonl file, a `datasets` folder (save_to_disk), or a folder of files.

    text_field / doc_field: column (csv, datasets) or key (jsonl) holding the text / the document id. Without
    doc_field, a "doc_id" column is used when there is one (so `corpus export` output reads back as written),
    else each row is its own document (doc id = row number, counted from 0 over all rows).
    windows: if set, turn each text (for .txt: the whole file) into context windows of that size, keeping
    every `stride`-th window. Empty texts are skipped with one warning that counts them.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"corpus not found: {path}")
    if path.is_dir():
        items = _read_dir(path, text_field, doc_field, windows, stride)
    else:
        items = _read_file(path, text_field, doc_field, windows, stride, prefix="")
    if not items:
        raise CorpusError(f"corpus {path} has no non-empty texts")
    return items


def _is_datasets_dir(path: Path) -> bool:
    return any((path / f).exists() for f in ("state.json", "dataset_info.json", "dataset_dict.json"))


def _read_dir(path, text_field, doc_field, windows, stride):
    if _is_datasets_dir(path):
        return _read_datasets(path, text_field, doc_field, windows, stride)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED)
    if not files:
        raise CorpusError(
            f"folder {path} is neither a `datasets` folder (save_to_disk) nor holds any {'/'.join(SUPPORTED)} files"
        )
    items = []
    for f in files:
        # Row-number doc ids would collide across files: prefix them with the file stem.
        items += _read_file(f, text_field, doc_field, windows, stride, prefix=f.stem + ":")
    return items


def read_text_file(path) -> str:
    """The file as text (`qaemb_fast.texts.read_text_file`); not UTF-8 is a CorpusError naming the file and line."""
    try:
        return _decode_text_file(path)
    except TextFileError as e:
        raise CorpusError(str(e)) from None


def read_texts(path, text_field: str = "text") -> list[str]:
    """Only the texts of `read_corpus(path, text_field)`, in file order (what `qaemb-fast embed --input` reads)."""
    return [it.text for it in read_corpus(path, text_field=text_field)]


def _read_file(path, text_field, doc_field, windows, stride, prefix):
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return _read_txt(path, windows, stride)
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(read_text_file(path), newline=""))
        rows = list(reader)
        fields = reader.fieldnames or []
        return _rows_to_items(rows, fields, text_field, doc_field, windows, stride, str(path), prefix)
    if suffix == ".jsonl":
        try:
            rows = read_jsonl(path)
        except TextFileError as e:  # bad JSON or not UTF-8: a CorpusError naming the file and line
            raise CorpusError(str(e)) from None
        fields = list(dict.fromkeys(k for r in rows for k in r))
        return _rows_to_items(rows, fields, text_field, doc_field, windows, stride, str(path), prefix)
    raise CorpusError(
        f"unknown corpus format {suffix or '(no extension)'!r} for {path}: use .txt, .csv, .jsonl or a `datasets` folder"
    )


def _read_txt(path, windows, stride):
    lines = read_text_file(path).splitlines()
    stem = path.stem
    if windows is not None:
        words = " ".join(lines).split()
        if not words:
            return []
        return word_stream_to_items(words, stem, size=windows, stride=stride)
    has_blank = any(not ln.strip() for ln in lines) and any(ln.strip() for ln in lines)
    items, block, prev_blank = [], -1, True
    for ln in lines:
        text = ln.strip()
        if not text:
            prev_blank = True
            continue
        if prev_blank or not has_blank:
            block += 1  # a new paragraph (or, without blank lines, every line is its own document)
        prev_blank = False
        items.append(CorpusItem(text, f"{stem}:{block}"))
    return items


def _rows_to_items(rows, fields, text_field, doc_field, windows, stride, source, prefix):
    if doc_field is None and DOC_ID_FIELD in fields:
        doc_field = DOC_ID_FIELD
    if rows and text_field not in fields:
        raise CorpusError(f"{source}: no text field {text_field!r}; fields are {list(fields)}")
    if doc_field is not None and rows and doc_field not in fields:
        raise CorpusError(f"{source}: no doc id field {doc_field!r}; fields are {list(fields)}")
    items, empty = [], 0
    for i, row in enumerate(rows):
        text = row.get(text_field)
        text = "" if text is None else str(text).strip()
        if not text:
            empty += 1
            continue
        doc = str(row.get(doc_field)) if doc_field is not None else f"{prefix}{i}"
        if windows is not None:
            items += word_stream_to_items(text.split(), doc, size=windows, stride=stride)
        else:
            items.append(CorpusItem(text, doc))
    if empty:
        warnings.warn(f"{source}: skipped {empty} empty text(s)", stacklevel=3)
    return items


def _read_datasets(path, text_field, doc_field, windows, stride):
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(path))
    if isinstance(ds, DatasetDict):
        raise CorpusError(f"{path} is a DatasetDict with splits {list(ds)}; pass one split's folder, e.g. {path}/train")
    cols = ds.column_names
    if text_field not in cols:
        raise CorpusError(f"{path}: no text column {text_field!r}; columns are {cols}")
    if doc_field is not None and doc_field not in cols:
        raise CorpusError(f"{path}: no doc id column {doc_field!r}; columns are {cols}")
    if doc_field is None and DOC_ID_FIELD in cols:
        doc_field = DOC_ID_FIELD
    keep = [c for c in (text_field, doc_field) if c is not None]
    rows = ds.select_columns(keep).to_list()
    return _rows_to_items(rows, cols, text_field, doc_field, windows, stride, str(path), "")


# ----------------------------------------------------------------------------------------------------------------
# The offline texts (Debian packages, unpacked without installing R)

# name -> (Debian package, path inside the package that proves it is there)
OFFLINE_PACKAGES = {
    "austen": ("r-cran-janeaustenr", "usr/lib/R/site-library/janeaustenr/data/Rdata.rdx"),
    "mobydick": ("r-cran-tokenizers", "usr/lib/R/site-library/tokenizers/data/Rdata.rdx"),
    "wordnet": ("wordnet-base", "usr/share/wordnet/data.noun"),
}


SYSTEM_ROOT = Path("/")  # where installed Debian packages are; the corpus cache is searched next


def default_cache_dir() -> Path:
    """Where fetched corpora live: $QAEMB_FAST_CACHE/corpora, default ~/.cache/qaemb-fast/corpora."""
    root = os.environ.get("QAEMB_FAST_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "qaemb-fast") / "corpora"


def _locate(marker: str, cache_dir=None) -> Path | None:
    """The root ('/' or the cache's unpack folder) under which the file `marker` exists, or None."""
    for root in (SYSTEM_ROOT, Path(cache_dir or default_cache_dir()) / "root"):
        if (root / marker).exists():
            return root
    return None


def debian_package_root(package: str, marker: str, cache_dir=None, quiet: bool = True) -> Path:
    """The root under which a Debian package's file `marker` exists: '/' if the package is installed, else the
    cache, where the .deb is downloaded on first use (`apt-get download PKG` into cache_dir/debs) and unpacked
    (`dpkg-deb -x` into cache_dir/root): no root rights, no R. The one way this project fetches offline data."""
    cache = Path(cache_dir or default_cache_dir())
    root = _locate(marker, cache)
    if root is not None:
        return root
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise CorpusError(
            f"{marker} not found and apt-get/dpkg-deb are missing; install the Debian package {package} or unpack "
            f"it into {cache / 'root'}"
        )
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    _apt_download([package], debs, quiet)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise CorpusError(f"apt-get download {package} produced no .deb in {debs}")
    r = subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(cache / "root")], capture_output=True, text=True)
    if r.returncode != 0:
        raise CorpusError(f"dpkg-deb -x {found[-1]} failed:\n{r.stderr.strip()}")
    if not (cache / "root" / marker).exists():
        raise CorpusError(f"unpacking {found[-1]} did not give {marker}")
    return cache / "root"


def offline_corpus_root(name: str, cache_dir=None, fetch: bool = True) -> Path | None:
    """The root under which offline corpus `name`'s files (OFFLINE_PACKAGES) are; fetched on first use unless
    fetch=False (then None when they are not there). Every reader of the offline texts looks them up here."""
    package, marker = OFFLINE_PACKAGES[name]
    if not fetch:
        return _locate(marker, cache_dir)
    return debian_package_root(package, marker, cache_dir)


def fetch_offline_corpora(cache_dir=None, names=None, quiet: bool = False) -> dict[str, Path]:
    """Make the offline texts available; return {name: file that proves it} for austen, mobydick, wordnet.

    A no-op for texts already installed system-wide (e.g. /usr/share/wordnet) or already in the cache; otherwise
    see `debian_package_root`.
    """
    out = {}
    for n in list(names or OFFLINE_PACKAGES):
        package, marker = OFFLINE_PACKAGES[n]
        out[n] = debian_package_root(package, marker, cache_dir, quiet) / marker
        if not quiet:
            print(f"{n}: {out[n]}", file=sys.stderr)
    return out


def _apt_download(pkgs, dest, quiet):
    def attempt():
        return subprocess.run(["apt-get", "download", *pkgs], cwd=dest, capture_output=True, text=True)

    if not quiet:
        print(f"downloading {' '.join(pkgs)} into {dest}", file=sys.stderr)
    r = attempt()
    if r.returncode != 0 and "Unable to locate" in r.stderr:
        subprocess.run(["apt-get", "update"], capture_output=True, text=True)  # stale package lists
        r = attempt()
    if r.returncode != 0:
        raise CorpusError(f"apt-get download {' '.join(pkgs)} failed:\n{r.stderr.strip()}")


def read_r_lazyload(data_dir) -> dict:
    """Read every object of an R package's lazy-load data (data/Rdata.rdx + Rdata.rdb) without R.

    The .rdx is a gzip RDS whose `variables` maps name -> (offset, length) in the .rdb; each blob is a 4-byte
    big-endian uncompressed length, then a zlib stream, or a type byte (Z = raw LZMA2, 2 = bzip2, 0 = none) and
    the body. The decompressed bytes are an RDS stream, which `rdata` converts (character vector -> np array).
    """
    import rdata

    data_dir = Path(data_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rdata: "Unknown file type: assumed RDS" for the headerless streams
        index = rdata.conversion.convert(
            rdata.parser.parse_data(gzip.decompress((data_dir / "Rdata.rdx").read_bytes()))
        )
        rdb = (data_dir / "Rdata.rdb").read_bytes()
        out = {}
        for name, (off, length) in index["variables"].items():
            blob = rdb[int(off) : int(off) + int(length)]
            raw = _decompress_blob(blob, f"{data_dir}/Rdata.rdb: {name}")
            out[str(name)] = rdata.conversion.convert(rdata.parser.parse_data(raw))
    return out


def _decompress_blob(blob: bytes, what: str = "blob") -> bytes:
    """One .rdb object: 4-byte big-endian length, then zlib, or a type byte (Z lzma2, 2 bzip2, 0 none) + body."""
    import bz2
    import lzma
    import zlib

    if len(blob) < 5:
        raise CorpusError(f"{what}: truncated lazy-load blob ({len(blob)} bytes)")
    (size,) = struct.unpack(">I", blob[:4])
    body, kind = blob[4:], blob[4:5]
    try:
        if kind == b"Z":
            raw = lzma.decompress(body[1:], format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
        elif kind == b"2":
            raw = bz2.decompress(body[1:])
        elif kind == b"0":
            raw = body[1:]
        else:
            raw = zlib.decompress(body)
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as e:
        raise CorpusError(f"{what}: corrupt lazy-load blob ({e})") from None
    if len(raw) != size:
        raise CorpusError(f"{what}: decompressed to {len(raw)} bytes, expected {size}")
    return raw


def _clean(text: str) -> str:
    # Gutenberg conventions: _italics_ and -- for dashes. Keep the words, drop the markup.
    return re.sub(r"_", "", text.replace("--", "—"))


AUSTEN_BOOKS = ("sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion")
_AUSTEN_CHAPTER = re.compile(r"^\s*chapter\s+([ivxlc]+|\d+)\.?\s*$", re.IGNORECASE)
_AUSTEN_END = re.compile(r"^\s*(finis|the end|a note on the text)\s*$", re.IGNORECASE)
_AUSTEN_SKIP = re.compile(r"^\s*volume\s+[ivx]+\s*$", re.IGNORECASE)


@lru_cache(maxsize=1)
def austen_chapters() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The six Austen novels as ((doc_id, words), ...), one entry per chapter; doc id 'austen/<book>/chNNN'.

    Chapters are numbered 1.. in order within a book (Emma restarts its numbering each volume, so the printed
    number would not be unique). Front matter before the first chapter and notes after the end are dropped.
    """
    root = offline_corpus_root("austen")
    books = read_r_lazyload(root / "usr/lib/R/site-library/janeaustenr/data")
    chapters = []
    for book in AUSTEN_BOOKS:
        n_chapters, lines = 0, None
        for line in map(str, books[book]):
            if _AUSTEN_END.match(line):
                break
            if _AUSTEN_CHAPTER.match(line):
                if lines is not None:
                    chapters.append((f"austen/{book}/ch{n_chapters:03d}", tuple(_clean(" ".join(lines)).split())))
                n_chapters, lines = n_chapters + 1, []
            elif lines is not None and not _AUSTEN_SKIP.match(line):
                lines.append(line)
        if lines is not None:
            chapters.append((f"austen/{book}/ch{n_chapters:03d}", tuple(_clean(" ".join(lines)).split())))
    return tuple(chapters)


_SENTENCE_END = re.compile(r"(?<!\bMr)(?<!\bMrs)(?<!\bDr)(?<!\bSt)(?<=[.!?])[\"'”’)]*\s+(?=[\"'“‘(]*[A-Z])")


def austen_sentences() -> list[CorpusItem]:
    """Austen's prose split into sentences (simple punctuation rule), doc id = the chapter."""
    items = []
    for doc, words in austen_chapters():
        for s in _SENTENCE_END.split(" ".join(words)):
            if s.strip():
                items.append(CorpusItem(s.strip(), doc))
    return items


@lru_cache(maxsize=1)
def moby_dick_chapters() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Moby Dick as ((doc_id, words), ...): 'mobydick/chNNN' for the 135 chapters and 'mobydick/epilogue'.

    The Gutenberg header/licence, the etymology/extracts front matter and the chapter titles are dropped.
    """
    root = offline_corpus_root("mobydick")
    text = str(read_r_lazyload(root / "usr/lib/R/site-library/tokenizers/data")["mobydick"][0])
    chapters, current, lines = [], None, []
    for line in text.lstrip("\ufeff").splitlines():
        m = re.match(r"^CHAPTER (\d+)\. ", line)
        if m or line.strip() == "Epilogue" or line.startswith("End of Project Gutenberg"):
            if current is not None:
                chapters.append((current, tuple(_clean(" ".join(lines)).split())))
            if line.startswith("End of Project Gutenberg"):
                break
            current, lines = (f"mobydick/ch{int(m.group(1)):03d}" if m else "mobydick/epilogue"), []
            continue
        if current is not None:
            lines.append(line)
    return tuple(chapters)


def moby_dick_words() -> list[str]:
    """The whole novel (chapters + epilogue) as one word stream."""
    return [w for _, words in moby_dick_chapters() for w in words]


WORDNET_POS = ("noun", "verb", "adj", "adv")
_QUOTED = re.compile(r'"([^"]+)"')


@lru_cache(maxsize=1)
def _wordnet_examples(group: int) -> tuple[CorpusItem, ...]:
    root = offline_corpus_root("wordnet")
    items, seen = [], set()
    for pos in WORDNET_POS:
        n_in_doc, doc = 0, 0
        with open(root / f"usr/share/wordnet/data.{pos}", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(" ") or "| " not in line:
                    continue  # licence header
                gloss = line.split("| ", 1)[1]
                examples = [e.strip() for e in _QUOTED.findall(gloss)]
                # dict.fromkeys: a synset can repeat an example; seen: so can different synsets.
                examples = [e for e in dict.fromkeys(examples) if len(e.split()) >= 2 and e not in seen]
                if not examples:
                    continue
                # A synset's examples stay in one document; a document closes after `group` sentences.
                if n_in_doc >= group:
                    doc, n_in_doc = doc + 1, 0
                for e in examples:
                    seen.add(e)
                    items.append(CorpusItem(e, f"wordnet/{pos}/{doc:04d}"))
                n_in_doc += len(examples)
    return tuple(items)


def wordnet_examples(group: int = 20) -> list[CorpusItem]:
    """The quoted example sentences of WordNet's glosses (data.noun/verb/adj/adv), de-duplicated, in file order.

    Doc id 'wordnet/<pos>/NNNN': runs of ~`group` consecutive sentences (whole synsets) form one document, so a
    document-level split is neither trivial (one doc per sentence) nor coarse (one doc per part of speech).
    """
    return list(_wordnet_examples(group))


# ----------------------------------------------------------------------------------------------------------------
# Sampled corpora


def _sample(items: list[CorpusItem], n: int | None, seed: int, what: str) -> list[CorpusItem]:
    if n is None:
        return list(items)
    if n > len(items):
        raise CorpusError(f"asked for {n} {what} texts but only {len(items)} are available")
    rng = np.random.default_rng(seed)
    return [items[i] for i in rng.choice(len(items), size=n, replace=False)]


def _chapter_windows(chapters, size, stride, seed) -> list[CorpusItem]:
    # Full-length windows only, every `stride`-th, from a seeded random phase per chapter.
    rng = np.random.default_rng(seed)
    items = []
    for doc, words in chapters:
        offset = size + int(rng.integers(stride))
        items += word_stream_to_items(words, doc, size=size, stride=stride, offset=offset)
    return items


def austen_items(n: int | None = None, seed: int = 0, size: int = 10, stride: int = 7) -> list[CorpusItem]:
    """Context windows (word + preceding `size`) from every `stride`-th position of every Austen chapter.

    n=None: all of them in book order; otherwise a seeded random sample of n, in random order.
    """
    return _sample(_chapter_windows(austen_chapters(), size, stride, seed), n, seed, "Austen")


def moby_dick_items(n: int | None = None, seed: int = 0, size: int = 10, stride: int = 7) -> list[CorpusItem]:
    """Like `austen_items`, for the chapters of Moby Dick."""
    return _sample(_chapter_windows(moby_dick_chapters(), size, stride, seed), n, seed, "Moby Dick")


def wordnet_items(n: int | None = None, seed: int = 0) -> list[CorpusItem]:
    """WordNet example sentences: all in file order (n=None) or a seeded random sample of n."""
    return _sample(wordnet_examples(), n, seed, "WordNet")


DEFAULT_MIX = {"austen": 0.4, "mobydick": 0.3, "wordnet": 0.3}


def build_default_corpus(n_texts: int = 3300, seed: int = 0) -> list[CorpusItem]:
    """The default student's training corpus: ~40 % Austen windows, 30 % Moby Dick windows, 30 % WordNet examples.

    Windows are 10-word contexts (word + preceding 10) taken at every 7th position of each chapter, so samples
    rarely overlap, and are drawn at random across all chapters. The result is in seeded random order, so any
    prefix is a representative sample (a partial labelling run is still usable). Same seed -> same list.
    """
    if n_texts < 1:
        raise CorpusError(f"n_texts must be >= 1, got {n_texts}")
    n_austen = round(n_texts * DEFAULT_MIX["austen"])
    n_moby = round(n_texts * DEFAULT_MIX["mobydick"])
    n_wordnet = n_texts - n_austen - n_moby
    items = (
        austen_items(n_austen, seed=seed)
        + moby_dick_items(n_moby, seed=seed + 1)
        + wordnet_items(n_wordnet, seed=seed + 2)
    )
    order = np.random.default_rng(seed + 3).permutation(len(items))
    return [items[i] for i in order]


BUILTIN = {
    "default": lambda n, seed: build_default_corpus(n if n is not None else 3300, seed),
    "austen": austen_items,
    "mobydick": moby_dick_items,
    "wordnet": wordnet_items,
}


def load_builtin(name: str, n: int | None = None, seed: int = 0) -> list[CorpusItem]:
    """A named offline corpus (default|austen|mobydick|wordnet), optionally a seeded sample of n texts."""
    if name not in BUILTIN:
        raise CorpusError(f"unknown builtin corpus {name!r}; choose from {sorted(BUILTIN)}")
    return BUILTIN[name](n, seed)


def load_corpus_spec(spec: str, text_field: str = "text", doc_field: str | None = None) -> list[CorpusItem]:
    """What `qaemb-fast label --corpus SPEC` reads: a file/folder path, or 'builtin:NAME[:N[:SEED]]'.

    Examples: 'stories/', 'texts.jsonl', 'builtin:default', 'builtin:wordnet:500', 'builtin:austen:1000:3'.
    """
    spec = str(spec)
    if spec.startswith("builtin:"):
        parts = spec.split(":")[1:]
        if not 1 <= len(parts) <= 3 or not parts[0]:
            raise CorpusError(f"bad corpus spec {spec!r}; expected builtin:NAME[:N[:SEED]]")
        try:
            n = int(parts[1]) if len(parts) > 1 and parts[1] else None
            seed = int(parts[2]) if len(parts) > 2 else 0
        except ValueError:
            raise CorpusError(f"bad corpus spec {spec!r}: N and SEED must be integers") from None
        return load_builtin(parts[0], n, seed)
    return read_corpus(spec, text_field=text_field, doc_field=doc_field)


def corpus_stats(items) -> dict:
    """Counts for a corpus: texts, documents, words per text, duplicates, per-source texts, hash."""
    items = list(items)
    lengths = np.array([len(it.text.split()) for it in items]) if items else np.zeros(0)
    sources: dict[str, int] = {}
    for it in items:
        src = it.doc_id.split("/", 1)[0] if "/" in it.doc_id else "(file)"
        sources[src] = sources.get(src, 0) + 1
    return {
        "texts": len(items),
        "documents": len({it.doc_id for it in items}),
        "unique_texts": len({it.text for it in items}),
        "words_mean": float(lengths.mean()) if len(lengths) else 0.0,
        "words_min": int(lengths.min()) if len(lengths) else 0,
        "words_max": int(lengths.max()) if len(lengths) else 0,
        "sources": sources,
        "hash": corpus_hash(items),
    }
