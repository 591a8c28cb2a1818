"""A drop-in replacement for imodelsX's `QAEmb` (csinva/imodelsX, imodelsx/qaemb/qaemb.py).

imodelsX sends one prompt per (text, question) pair through an LLM and string-matches "yes". This class keeps its
call shape and output but answers with a distilled student, all questions in one forward pass::

    - from imodelsx import QAEmb
    + from qaemb_fast import QAEmb        # the only change

    embedder = QAEmb(questions=questions, checkpoint=checkpoint, batch_size=64)
    embs = embedder(examples)            # (n_examples, n_questions) float64 of 0.0/1.0, like imodelsX

`checkpoint` is a student checkpoint folder (None = the shipped default student). An LLM name such as
'meta-llama/Meta-Llama-3-8B-Instruct' (what imodelsX code passes) is not a local folder: the default student
answers instead, with a warning, so existing code runs unchanged. A student with a question head (the shipped
default checkpoint, `checkpoints/default`) answers any question; one without answers only the questions
it was trained on (for a new question set, `qaemb-fast label`, then `qaemb-fast train`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from qaemb_fast.embedder import QAEmbedder, check_questions, check_texts


def _is_local_path(checkpoint: str) -> bool:
    """A string names a local folder if it exists, or if its first component does (a mistyped local path);
    anything else that looks like `owner/name` is taken as an LLM hub id."""
    p = Path(checkpoint).expanduser()
    return p.exists() or p.is_absolute() or checkpoint.startswith(".") or Path(p.parts[0]).exists()


class QAEmb:
    """imodelsX-compatible QA embedder backed by a student. Call it on a list of texts.

    questions: list of yes/no questions, each answered by the student checkpoint (a subset, in any order).
    checkpoint: student checkpoint folder, or None for the default student.
    batch_size: texts per forward pass. use_cache, CACHE_DIR: accepted and ignored (no cache needed: the student
    is faster than reading a cache). prompt_custom: ignored with a warning (the student has no prompt; it learned
    the teacher's prompt). device / precision: passed to QAEmbedder.
    """

    def __init__(
        self,
        questions: list[str],
        checkpoint: str | None = None,
        use_cache: bool = True,
        batch_size: int = 16,
        prompt_custom: str | None = None,
        CACHE_DIR: str | None = None,  # noqa: N803 (imodelsX's spelling)
        device=None,
        precision: str = "auto",
    ):
        if checkpoint is not None and not isinstance(checkpoint, (str, Path)):
            raise TypeError(f"checkpoint must be a folder path or None, not {type(checkpoint).__name__}")
        if checkpoint is not None and not _is_local_path(str(checkpoint)):
            warnings.warn(
                f"checkpoint {checkpoint!r} is an LLM name, not a student checkpoint folder; qaemb_fast.QAEmb answers "
                "with the default distilled student instead (pass a folder written by `qaemb-fast train` to choose).",
                stacklevel=2,
            )
            checkpoint = None
        if prompt_custom:
            warnings.warn("prompt_custom is ignored: the student answers without a prompt", stacklevel=2)
        self.embedder = QAEmbedder.from_pretrained(checkpoint, device=device, precision=precision)
        self.checkpoint = checkpoint
        self.batch_size = batch_size
        self.use_cache = use_cache  # ignored; kept so code that reads it still works
        self.questions = questions

    @property
    def questions(self) -> list[str]:
        return list(self._questions)

    @questions.setter
    def questions(self, questions) -> None:
        # imodelsX code sometimes reassigns `.questions` after construction, so validate here, not in __init__.
        if isinstance(questions, str):
            raise TypeError("questions must be a list of question strings, not one string")
        questions = list(questions) if hasattr(questions, "__iter__") else questions
        if isinstance(questions, list) and not questions:
            raise ValueError("questions is empty")
        questions = check_questions(questions)
        if not all(isinstance(q, str) for q in questions):
            raise TypeError("questions must be question strings (imodelsX passes strings), not indices")
        known = set(self.embedder.questions)
        unknown = [q for q in questions if q not in known]
        if unknown and not self.embedder.answers_any_question:
            lines = [
                f"{q!r} (closest in meaning: {[c for c, _ in self.embedder.similar_questions(q, n=2)]})"
                for q in unknown[:5]
            ]
            raise ValueError(
                f"{len(unknown)} of {len(questions)} questions are not answered by this student "
                f"({len(known)} questions, set '{self.embedder.question_set.name}'):\n  "
                + "\n  ".join(lines)
                + "\nUse a checkpoint with a question head (the shipped checkpoints/default has one), questions "
                "from embedder.embedder.questions, or train a student for your question set."
            )
        self._questions = questions

    def __call__(
        self,
        examples: list[str],
        verbose: bool = True,
        debug_answering_correctly: bool = False,
        speed_up_with_unique_calls: bool = False,
    ) -> np.ndarray:
        """examples: list of n texts -> (n, n_questions) float64 array of 0.0/1.0 answers (1.0 = yes).

        verbose: show a progress bar. debug_answering_correctly: print the first 30 (text, question, answer)
        triples. speed_up_with_unique_calls: answer each distinct text once (any number of questions here).
        """
        if isinstance(examples, str):
            raise TypeError("examples must be a list of texts (imodelsX treats a string as a list of characters)")
        examples = (
            list(np.asarray(examples, dtype=object).ravel()) if isinstance(examples, np.ndarray) else list(examples)
        )
        if not examples:
            return np.zeros((0, len(self._questions)), dtype=float)  # what imodelsX returns for no examples
        if speed_up_with_unique_calls:
            unique, inverse = np.unique(np.asarray(check_texts(examples), dtype=object), return_inverse=True)
            return self(list(unique), verbose=verbose, debug_answering_correctly=debug_answering_correctly)[inverse]
        answers = self.embedder.encode(
            examples, batch_size=self.batch_size, show_progress_bar=verbose, output="binary", questions=self._questions
        ).astype(float)
        if debug_answering_correctly:
            pairs = [(e, q) for e in examples for q in self._questions][:30]
            for k, (e, q) in enumerate(pairs):
                print(f"Input text: {e}\nQuestion: {q}\n-> {'yes' if answers.flat[k] else 'no'}\n")
        return answers
