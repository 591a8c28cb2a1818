"""QAEmbedder: interpretable embeddings at sentence-transformers speed.

    emb = QAEmbedder.from_pretrained()            # the shipped default student (checkpoints/default)
    X = emb.encode(["I ate a sandwich.", ...])    # (n, Q) float32, X[i, k] = P(yes) for emb.questions[k]
    emb.explain("I ate a sandwich.")              # [(question, P(yes)), ...] most confidently yes

`encode` follows the encoder protocol shared with the teacher in `distill` (same arguments, same output), so a
teacher and a student are interchangeable in voxel features, evaluation and benchmarks.
"""

from __future__ import annotations

import numbers
import os
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from qaemb_fast.device import PRECISIONS, resolve_dtype
from qaemb_fast.questions import QuestionSet
from qaemb_fast.student import StudentModel

DEFAULT_CHECKPOINT_ENV = "QAEMB_FAST_DEFAULT_CHECKPOINT"


class TruncationWarning(UserWarning):
    """Some texts were longer than a model's token limit and only their beginning was read (student or teacher)."""


def warn_truncated(n: int, total: int, limit: int, who: str, how: str) -> None:
    """One warning per call, with the count: a cut text is answered from its beginning only, silently otherwise."""
    if n:
        warnings.warn(
            f"{n} of {total} texts are longer than the {who}'s limit of {limit} tokens and were cut to it (only "
            f"their beginning is answered); {how}",
            TruncationWarning,
            stacklevel=3,
        )


def default_checkpoint_path() -> Path:
    """The shipped default student: $QAEMB_FAST_DEFAULT_CHECKPOINT, else <repo>/checkpoints/default."""
    env = os.environ.get(DEFAULT_CHECKPOINT_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"${DEFAULT_CHECKPOINT_ENV}={env} is not a folder")
        return path
    # <repo>/qaemb_fast/embedder.py -> <repo>/checkpoints/default (works for editable installs and clones)
    path = Path(__file__).resolve().parents[1] / "checkpoints" / "default"
    if not path.is_dir():
        raise FileNotFoundError(
            f"the default student checkpoint was not found at {path}. It ships in the repository's checkpoints/ "
            f"folder (use an editable install from a clone: `pip install -e .`); or set ${DEFAULT_CHECKPOINT_ENV}, "
            "or pass the path of a checkpoint folder written by `qaemb-fast train`."
        )
    return path


def check_texts(texts) -> list[str]:
    """Texts must be a non-empty list of non-empty strings; whitespace at the ends is stripped."""
    texts = _as_list(texts, "texts must be a string or a list of strings")
    if not texts:
        raise ValueError("no texts given (empty list)")
    _reject_bad_entries(texts, lambda t: isinstance(t, str) and t.strip(), "texts must be non-empty strings")
    return [t.strip() for t in texts]


def _as_list(values, must: str) -> list:
    """A list from a list, tuple, iterable or numpy array; anything else (bytes included) is a ValueError."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if isinstance(values, bytes) or not hasattr(values, "__iter__"):
        raise ValueError(f"{must}, not {type(values).__name__}")
    return list(values)


def _reject_bad_entries(values: list, valid, must: str) -> None:
    """One ValueError naming the kinds and positions of the entries for which valid(entry) is false."""
    bad = [i for i, v in enumerate(values) if not valid(v)]
    if bad:
        kinds = sorted({"empty string" if isinstance(values[i], str) else type(values[i]).__name__ for i in bad})
        raise ValueError(f"{must}; bad entries ({', '.join(kinds)}) at positions {bad[:10]}")


def check_questions(questions) -> list:
    """A question selection must be a non-empty list of question strings or indices, without duplicates."""
    if isinstance(questions, (str, numbers.Integral)) and not isinstance(questions, bool):
        questions = [questions]
    questions = _as_list(questions, "questions must be a list of question strings")
    if not questions:
        raise ValueError("questions=[] selects nothing; pass None for all questions")

    def valid(q) -> bool:
        return not isinstance(q, bool) and (isinstance(q, numbers.Integral) or (isinstance(q, str) and bool(q.strip())))

    _reject_bad_entries(questions, valid, "questions must be non-empty strings (or indices)")
    seen, dupes = set(), []
    for q in questions:
        (dupes.append(q) if q in seen else seen.add(q))
    if dupes:
        raise ValueError(f"questions has duplicates, e.g. {dupes[0]!r}: each question must appear once")
    return questions


class QAEmbedder:
    """A trained student behind a sentence-transformers-like `encode`.

    model: a StudentModel (with its tokenizer). device: where to run (default: where the model is).
    precision: "auto" = bf16 autocast on CUDA and on CPUs with native bf16, else fp32; "bf16"; "fp32" (exact).
    max_length: tokens read per text (default: the checkpoint's, the length it was trained on; at most the
    backbone's positions). Longer texts are cut, with a `TruncationWarning` per `encode` call saying how many.
    """

    def __init__(self, model: StudentModel, device=None, precision: str = "auto", max_length: int | None = None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        if model.tokenizer is None:
            raise ValueError("the student model has no tokenizer")
        self.model = model.eval()
        self.precision = precision
        self._rows: dict[str, torch.Tensor] = {}  # question -> its projection by the question head, fp32 on CPU
        self._known_embeddings: tuple[list[str], torch.Tensor] | None = None
        model.check_max_length(max_length)
        self.max_length = max_length  # None: the checkpoint's
        if device is not None:
            self.model.to(device)

    @classmethod
    def from_pretrained(
        cls, path=None, device=None, precision: str = "auto", max_length: int | None = None
    ) -> QAEmbedder:
        """Load a student checkpoint folder (strictly, offline). path None = the shipped default student."""
        path = default_checkpoint_path() if path is None else Path(path)
        return cls(StudentModel.from_pretrained(path), device=device, precision=precision, max_length=max_length)

    def save_pretrained(self, path, dtype=torch.bfloat16) -> Path:
        return self.model.save_pretrained(path, dtype=dtype)

    @property
    def questions(self) -> list[str]:
        return self.model.questions

    @property
    def question_set(self) -> QuestionSet:
        return self.model.question_set

    @property
    def answers_any_question(self) -> bool:
        """Can this student answer questions it was not trained on (does it have a question head)?"""
        return self.model.answers_any_question

    def is_trained_question(self, question: str) -> bool:
        """Was `question` (this exact string) one of the questions the student was trained on? Any other question is
        answered by the question head, from the question's meaning alone: less accurate (see the model card)."""
        return self.model.is_trained_question(question)

    def similar_questions(self, question: str, n: int = 3) -> list[tuple[str, float]]:
        """The n trained questions closest in meaning to `question`: [(question, cosine similarity), ...], from the
        student's own question embeddings (mean-pooled encoder states)."""
        if self._known_embeddings is None:
            known = list(self.model.config.questions) + list(self.model.config.seen_questions)
            with torch.inference_mode():
                emb = torch.nn.functional.normalize(self.model.question_embeddings(known).float(), dim=-1)
            self._known_embeddings = (known, emb.cpu())
        known, emb = self._known_embeddings
        with torch.inference_mode():
            q = torch.nn.functional.normalize(self.model.question_embeddings([question]).float(), dim=-1).cpu()
        sim = (emb @ q[0]).numpy()
        best = np.argsort(-sim, kind="stable")[:n]
        return [(known[i], float(sim[i])) for i in best]

    def _select(self, questions):
        """(fixed-head indices, None) when every question is one of the fixed head's, else (None, head rows)."""
        if questions is None:
            return None, None
        questions = check_questions(questions)
        fixed = {q: i for i, q in enumerate(self.questions)}
        if all(isinstance(q, numbers.Integral) or q in fixed for q in questions):
            return self.question_set.indices(questions), None
        names = [
            self.questions[self.question_set.indices([q])[0]] if isinstance(q, numbers.Integral) else q
            for q in questions
        ]
        if not self.answers_any_question:
            unknown = next(q for q in names if q not in fixed)
            close = [q for q, _ in self.similar_questions(unknown)]
            raise KeyError(
                f"unknown question {unknown!r}: this student answers only its {len(self.questions)} trained questions "
                f"(closest in meaning: {close}); use a checkpoint with a question head, or train one"
            )
        missing = [q for q in names if q not in self._rows and q not in fixed]
        if missing:
            with torch.inference_mode():  # fp32: a question is projected once and reused for every text
                _, projected = self.model.question_rows(missing)
            self._rows.update((q, projected[j].float().cpu()) for j, q in enumerate(missing))
        width = self.model.config.question_head_width
        index = torch.tensor([fixed.get(q, -1) for q in names], dtype=torch.long)
        projected = torch.stack([self._rows[q] if q not in fixed else torch.zeros(width) for q in names])
        return None, (index, projected)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __repr__(self) -> str:
        cfg = self.model.config
        return (
            f"QAEmbedder({len(self.questions)} questions '{cfg.question_set_name}', backbone={cfg.backbone_name!r}, "
            f"pooling={cfg.pooling}, device={self.device}, precision={self.precision})"
        )

    def _autocast(self):
        device = self.device
        if next(self.model.parameters()).dtype != torch.float32:
            return nullcontext()  # weights already in low precision
        dtype = resolve_dtype(self.precision, device)
        if dtype == torch.float32 or device.type not in ("cuda", "cpu"):
            return nullcontext()  # exact fp32 (asked for, or "auto" on hardware without fast bf16)
        return torch.autocast(device.type, dtype=dtype)

    def encode(
        self,
        texts,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output: str = "prob",
        questions=None,
        convert_to_numpy: bool = True,
        device=None,
    ):
        """Answer every question for every text in one forward pass per batch.

        texts: a string or a list of n strings. Returns (n, Q) float32 (Q = len(questions) if given), or (Q,) for a
        single string. output: "prob" = P(yes); "binary" = (P(yes) > 0.5) as 0.0/1.0.
        questions: None for the trained questions (`self.questions`), or a list of question strings or indices (in
        the order given). A student with a question head answers any question string (`is_trained_question` says
        which it was trained on); one without raises KeyError for an unknown question.
        convert_to_numpy: False returns a CPU torch.Tensor. device: move the model there first.
        Inputs are sorted by length so each batch pads little; the output keeps the input order.
        """
        from tqdm.auto import tqdm

        single = isinstance(texts, str)
        texts = check_texts([texts] if single else texts)
        if output not in ("prob", "binary"):
            raise ValueError(f"output must be 'prob' or 'binary', not {output!r}")
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        batch_size = int(batch_size)
        if device is not None:
            self.model.to(device)
        device = self.device
        idx, head_rows = self._select(questions)
        if head_rows is not None:
            head_rows = (head_rows[0].to(device), head_rows[1].to(device))
        width = (
            self.model.num_questions
            if idx is None and head_rows is None
            else len(idx)
            if idx is not None
            else len(head_rows[1])
        )

        # Longest first: padding per batch stays small, and an out-of-memory error shows up on the first batch.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        starts = range(0, len(texts), batch_size)
        if show_progress_bar is None:
            show_progress_bar = len(starts) > 8 and sys.stderr.isatty()
        out = torch.empty((len(texts), width), dtype=torch.float32)
        n_truncated = 0
        with torch.inference_mode(), self._autocast():
            for start in tqdm(starts, desc="encode", unit="batch", disable=not show_progress_bar):
                rows = order[start : start + batch_size]
                batch_texts = [texts[i] for i in rows]
                batch = self.model.tokenize(batch_texts, self.max_length)
                n_truncated += self.model.num_truncated(batch_texts, batch, self.max_length)
                logits = self.model(**{k: v.to(device) for k, v in batch.items()}, rows=head_rows).float()
                if idx is not None:
                    logits = logits[:, idx]
                out[torch.as_tensor(rows)] = torch.sigmoid(logits).cpu()
        limit = self.max_length or self.model.config.max_length
        warn_truncated(
            n_truncated, len(texts), limit, "student", "raise max_length (QAEmbedder(max_length=N)) or split them"
        )
        if output == "binary":
            out = (out > 0.5).float()
        if single:
            out = out[0]
        return out.numpy() if convert_to_numpy else out

    def explain(self, text: str, top_k: int = 5, questions=None) -> list[tuple[str, float]]:
        """The top_k questions answered most confidently yes for `text`: [(question, P(yes)), ...], highest first."""
        if not isinstance(text, str):
            raise ValueError(f"explain takes one string, not {type(text).__name__}")
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, not {top_k!r}")
        names = self.questions if questions is None else check_questions(questions)
        names = [
            self.questions[self.question_set.indices([q])[0]] if isinstance(q, numbers.Integral) else q for q in names
        ]
        p = self.encode(text, questions=names)
        best = np.argsort(-p, kind="stable")[:top_k]
        return [(names[i], float(p[i])) for i in best]
