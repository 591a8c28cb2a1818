"""The question-set format: the one definition used by labelling, training and inference.

A question set is a JSON file::

    {"name": "default", "version": "1.0", "questions": ["Does the input mention food?", ...],
     "hash": "sha256:..."}

The hash covers the ordered questions only (not name/version), so two files with the same questions in the
same order are interchangeable, and a checkpoint or labelled dataset can prove which questions it answers.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import re
from dataclasses import dataclass
from pathlib import Path

from qaemb_fast.texts import read_text_file

DEFAULT_QUESTIONS_PATH = Path(__file__).parent / "data" / "default_questions.json"


class QuestionSetError(ValueError):
    """A question set that is malformed, or whose content does not match its hash."""


def normalize_question(question: str) -> str:
    """Lower-case, collapse whitespace, drop punctuation: used to find duplicates and near-misses."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", question.lower())).strip()


def hash_questions(questions) -> str:
    """sha256 over the ordered questions, joined by newlines (questions never contain newlines)."""
    return "sha256:" + hashlib.sha256("\n".join(questions).encode("utf-8")).hexdigest()


def validate_questions(questions) -> tuple[str, ...]:
    """Return the questions as a tuple, or raise QuestionSetError naming every bad entry."""
    if isinstance(questions, str):
        raise QuestionSetError("questions must be a list of strings, not a single string")
    questions = tuple(questions)
    if not questions:
        raise QuestionSetError("a question set needs at least one question")
    problems, seen = [], {}
    for i, q in enumerate(questions):
        if not isinstance(q, str):
            problems.append(f"#{i}: not a string ({type(q).__name__})")
            continue
        if not q.strip():
            problems.append(f"#{i}: empty question")
            continue
        if q != q.strip() or "\n" in q:
            problems.append(f"#{i}: leading/trailing whitespace or a newline in {q!r}")
        if not q.rstrip().endswith("?"):
            problems.append(f"#{i}: not a question (must end with '?'): {q!r}")
        key = normalize_question(q)
        if key in seen:
            problems.append(f"#{i}: duplicate of #{seen[key]}: {q!r}")
        else:
            seen[key] = i
    if problems:
        raise QuestionSetError("invalid question set:\n  " + "\n  ".join(problems))
    return questions


@dataclass(frozen=True)
class QuestionSet:
    """An ordered, validated list of yes/no questions with a name, a version and a content hash."""

    questions: tuple[str, ...]
    name: str = "custom"
    version: str = "1.0"

    def __post_init__(self):
        object.__setattr__(self, "questions", validate_questions(self.questions))

    @property
    def hash(self) -> str:
        return hash_questions(self.questions)

    def __len__(self) -> int:
        return len(self.questions)

    def __iter__(self):
        return iter(self.questions)

    def __getitem__(self, i):
        return self.questions[i]

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "questions": list(self.questions), "hash": self.hash}

    @classmethod
    def from_dict(cls, d: dict, source: str = "question set") -> QuestionSet:
        if not isinstance(d, dict) or "questions" not in d:
            raise QuestionSetError(f"{source}: expected a JSON object with a 'questions' list")
        qs = cls(questions=d["questions"], name=str(d.get("name", "custom")), version=str(d.get("version", "1.0")))
        if "hash" in d and d["hash"] != qs.hash:
            raise QuestionSetError(
                f"{source}: the stored hash {d['hash']} does not match its questions ({qs.hash}); "
                "the questions were edited after the hash was written. Re-save the set with QuestionSet.save()."
            )
        return qs

    @classmethod
    def load(cls, path) -> QuestionSet:
        """Read a question-set JSON file. A plain JSON list of strings, or a .txt with one question per line,
        is accepted too (named after the file)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"question set not found: {path}")
        if path.suffix == ".txt":
            lines = [line.strip() for line in read_text_file(path).splitlines()]
            return cls(questions=[line for line in lines if line], name=path.stem)
        try:
            d = json.loads(read_text_file(path))
        except json.JSONDecodeError as e:
            raise QuestionSetError(f"{path}: not valid JSON ({e})") from e
        if isinstance(d, list):
            return cls(questions=d, name=path.stem)
        return cls.from_dict(d, source=str(path))

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def default(cls) -> QuestionSet:
        """The question set shipped with the package (and answered by the default student)."""
        return cls.load(DEFAULT_QUESTIONS_PATH)

    def subset(self, selected, name: str | None = None) -> QuestionSet:
        """A new set with the questions at `selected` (indices or question texts), in that order."""
        idx = self.indices(selected)
        return QuestionSet(
            tuple(self.questions[i] for i in idx), name=name or f"{self.name}-subset", version=self.version
        )

    def union(self, other: QuestionSet, name: str = "mixed") -> QuestionSet:
        """This set's questions, then `other`'s that are not in it (first-appearance order)."""
        if list(other.questions) == list(self.questions):
            return self
        seen = set(self.questions)
        return QuestionSet(tuple(self.questions) + tuple(q for q in other.questions if q not in seen), name=name)

    def indices(self, selected) -> list[int]:
        """Map question texts or integer indices to indices; unknown questions raise with the closest matches."""
        if isinstance(selected, (str, int)):
            selected = [selected]
        lookup = {q: i for i, q in enumerate(self.questions)}
        out = []
        for s in selected:
            if isinstance(s, numbers.Integral) and not isinstance(s, bool):
                i = int(s)
                if not -len(self) <= i < len(self):
                    raise IndexError(f"question index {i} out of range for {len(self)} questions")
                out.append(i % len(self))
            elif isinstance(s, str):
                if s in lookup:
                    out.append(lookup[s])
                    continue
                norm = {normalize_question(q): i for i, q in enumerate(self.questions)}
                if normalize_question(s) in norm:
                    out.append(norm[normalize_question(s)])
                    continue
                raise KeyError(f"unknown question {s!r}; closest known questions: {self.closest(s)}")
            else:
                raise TypeError(f"questions are selected by text or integer index, not {type(s).__name__}")
        return out

    def closest(self, text: str, n: int = 3) -> list[str]:
        import difflib

        norm = [normalize_question(q) for q in self.questions]
        hits = difflib.get_close_matches(normalize_question(text), norm, n=n, cutoff=0.0)
        return [self.questions[norm.index(h)] for h in hits]


def as_question_set(questions) -> QuestionSet:
    """Accept a QuestionSet, a path to a question-set file, or a list of question strings."""
    if isinstance(questions, QuestionSet):
        return questions
    if isinstance(questions, (str, Path)):
        if isinstance(questions, str) and questions == "default":
            return QuestionSet.default()
        return QuestionSet.load(questions)
    return QuestionSet(tuple(questions))
