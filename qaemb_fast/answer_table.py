"""AnswerTable: answers looked up by text instead of computed, behind the shared encoder protocol.

    table = AnswerTable(texts, answers, questions, name="teacher")    # answers (n, Q) float32
    table.encode(["a text"])        # (1, Q), exactly the stored row; a text not in the table is an error
    table["a text"]                 # (Q,) the same row; `text in table`, len(table), table.items() work too

The one text -> answers table of the project. Why it exists: teacher answers are expensive, so benchmarks and
evaluations read the answers a labelling job stored rather than asking the teacher again, and they must never
silently mix in other answers. Reading a labelling folder into a table is `distill.label.answers_by_text`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class MissingAnswersError(KeyError):
    """Texts that the table has no answers for (label them first)."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class AnswerTable(Mapping):
    """An encoder that looks answers up: texts (n,), answers (n, Q), questions (Q,), name (who answered).

    A read-only mapping text -> (Q,) float32 answers. The first row wins for a repeated text.
    """

    def __init__(self, texts, answers, questions, name: str = ""):
        answers = np.asarray(answers, dtype=np.float32)
        self.questions = list(questions)
        self.name = name
        texts = list(texts)
        if answers.ndim != 2 or answers.shape != (len(texts), len(self.questions)):
            raise ValueError(
                f"AnswerTable: {len(texts)} texts, {len(self.questions)} questions, answers {answers.shape}"
            )
        self._rows: dict[str, np.ndarray] = {}
        for text, row in zip(texts, answers):
            self._rows.setdefault(text, row)

    def __getitem__(self, text: str) -> np.ndarray:
        return self._rows[text]

    def __iter__(self):
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"AnswerTable({len(self)} texts x {len(self.questions)} questions, name={self.name!r})"

    def encode(self, texts, batch_size=32, show_progress_bar=None, output="prob", questions=None):
        """(n, Q) stored answers for n texts ((Q,) for one string); same arguments as `QAEmbedder.encode`."""
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        missing = [t for t in texts if t not in self._rows]
        if missing:
            raise MissingAnswersError(
                f"{len(missing)} of {len(texts)} texts have no stored answers (first: {missing[0]!r}); label them "
                "with the teacher first (e.g. `qaemb-fast voxels synthetic --export-windows FILE`, then "
                "`qaemb-fast label`)"
            )
        out = np.stack([self._rows[t] for t in texts])
        if output == "binary":
            out = (out > 0.5).astype(np.float32)
        if questions is not None:
            out = out[:, [q if isinstance(q, int) else self.questions.index(q) for q in questions]]
        return out[0] if single else out
