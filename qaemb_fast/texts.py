"""Texts in: the one text-file reader and the paper's context windows, shared by every layer.

`read_text_file` decodes every text file the project reads (corpora, `embed --input`, question sets) and names the
file and line of a byte that is not UTF-8. `context_windows` (each word of a story plus the words before it) is used
by the labelling corpora (`distill.corpus`: stories become texts to label) and by the voxel features
(`qaemb_fast.voxels.features`: each word's window is answered, then downsampled to TRs), so the texts the teacher
answers are exactly the texts the features look up.
"""

from __future__ import annotations

import json
from pathlib import Path


class TextFileError(ValueError):
    """A text file that is not UTF-8."""


def read_text_file(path) -> str:
    """The whole file decoded as UTF-8; a byte that is not UTF-8 is a TextFileError naming the file and line."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise TextFileError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); convert the file to UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {path.name} > fixed{path.suffix}`"
        ) from None


def read_jsonl(path) -> list[dict]:
    """One JSON object per non-blank line of a UTF-8 file; a bad line is a TextFileError naming the file and line."""
    rows = []
    for lineno, line in enumerate(read_text_file(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise TextFileError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise TextFileError(f"{path}:{lineno}: expected a JSON object per line, got {type(row).__name__}")
        rows.append(row)
    return rows


def context_windows(words, size: int = 10, start: int = 0, step: int = 1) -> list[str]:
    """Each word plus the preceding `size` words, joined by spaces (the paper's `' '.join(words[i-10:i+1])`).

    words: sequence of n strings -> the windows ending at words start, start + step, ... (all n by default);
    window i = words[max(0, i - size) : i + 1], so the first `size` windows are shorter (a story's start has less
    context). step > 1 keeps every step-th window; start = size keeps only full-length windows.
    """
    if size < 0:
        raise ValueError(f"window size must be >= 0, got {size}")
    if step < 1:
        raise ValueError(f"window step (stride) must be >= 1, got {step}")
    words = list(words)
    return [" ".join(words[max(0, i - size) : i + 1]) for i in range(start, len(words), step)]
