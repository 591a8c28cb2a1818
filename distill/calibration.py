"""Calibrating the teacher's P(yes): answers whose 0.5 cut means something.

Measured against gold labels (DESIGN.md §5, `qaemb-fast eval gold`), small instruction models rank texts well
within a question but say "yes" far too often, and how often depends on the question: their P(yes) for a
content-free input ("N/A") ranges from ~0.1 to ~0.8 across questions. The calibrations here are fixed transforms
of the teacher's log-odds z = log P(yes) - log P(no), so the same teacher answers can be re-calibrated without
asking it again:

    none          z                                  the raw answer
    contextual    z - z_cf(q)                        Zhao et al. 2021: z_cf(q) is the mean log-odds of question q
                                                     on content-free inputs; removes each question's own bias
    shifted       z - z_cf(q) - shift                contextual, then one global offset for every question,
                                                     fitted once on labelled pairs so that the yes-rate matches
                                                     (`fit_shift`); it transfers to questions without labels
    platt         a_q * z + b_q                      per-question logistic fit on labelled pairs (`fit_platt`);
                                                     only for questions with labels (a user's calibration split)

The calibrated P(yes) is sigmoid of the calibrated log-odds; a binary answer is P(yes) > 0.5. Content-free
log-odds cost three short prompts per question once per job (the text part of the prompt is all there is),
under 1 % of a labelling job's time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

CALIBRATIONS = ("none", "contextual", "shifted", "platt")
CONTENT_FREE_INPUTS = ("N/A", "[MASK]", "the")
# The global shift of "shifted" for the default teacher and prompt, fitted on the project's gold set by
# `qaemb-fast eval calibration` (fit_shift on all gold pairs). Other teachers: fit your own or use "contextual".
DEFAULT_SHIFT = 1.92
EPS = 1e-6


class CalibrationError(ValueError):
    """A calibration that cannot be applied: unknown kind, missing parameters, questions that do not match."""


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


@dataclass
class Calibration:
    """How raw P(yes) (n, Q) becomes calibrated P(yes) for the questions `questions` (Q,).

    kind: one of CALIBRATIONS. content_free_logodds: z_cf per question (Q,) for "contextual"/"shifted";
    shift: the global offset of "shifted"; platt_a / platt_b: per-question slopes and offsets (Q,) for "platt".
    Stored as plain lists in a labelling job's provenance (`to_dict` / `from_dict`).
    """

    kind: str = "none"
    questions: list[str] = field(default_factory=list)
    content_free_inputs: tuple[str, ...] = CONTENT_FREE_INPUTS
    content_free_logodds: list[float] = field(default_factory=list)
    shift: float = 0.0
    platt_a: list[float] = field(default_factory=list)
    platt_b: list[float] = field(default_factory=list)

    def __post_init__(self):
        if self.kind not in CALIBRATIONS:
            raise CalibrationError(f"unknown calibration {self.kind!r}; choose one of {', '.join(CALIBRATIONS)}")
        self.questions = list(self.questions)
        self.content_free_inputs = tuple(self.content_free_inputs)
        n = len(self.questions)
        if self.kind in ("contextual", "shifted") and len(self.content_free_logodds) != n:
            raise CalibrationError(f"{self.kind} calibration needs one content-free log-odds per question ({n})")
        if self.kind == "platt" and not (len(self.platt_a) == len(self.platt_b) == n):
            raise CalibrationError(f"platt calibration needs one slope and one offset per question ({n})")

    def logodds(self, p_yes) -> np.ndarray:
        """Calibrated log-odds of raw P(yes) (n, Q), columns in the order of `questions`."""
        z = logit(p_yes)
        if z.shape[-1] != len(self.questions) and self.kind != "none":
            raise CalibrationError(f"answers have {z.shape[-1]} columns, the calibration {len(self.questions)}")
        if self.kind == "none":
            return z
        if self.kind == "platt":
            return np.asarray(self.platt_a) * z + np.asarray(self.platt_b)
        z = z - np.asarray(self.content_free_logodds)
        return z - self.shift if self.kind == "shifted" else z

    def __call__(self, p_yes) -> np.ndarray:
        """Calibrated P(yes), float32, same shape as `p_yes` ("none" returns the answers unchanged)."""
        if self.kind == "none":
            return np.asarray(p_yes, dtype=np.float32)
        return sigmoid(self.logodds(p_yes)).astype(np.float32)

    def invert(self, p_calibrated) -> np.ndarray:
        """Raw P(yes) back from calibrated answers (every kind here is invertible)."""
        if self.kind == "none":
            return np.asarray(p_calibrated, dtype=np.float32)
        z = logit(p_calibrated)
        if self.kind == "platt":
            z = (z - np.asarray(self.platt_b)) / np.asarray(self.platt_a)
        elif self.kind != "none":
            z = z + np.asarray(self.content_free_logodds) + (self.shift if self.kind == "shifted" else 0.0)
        return sigmoid(z).astype(np.float32)

    def subset(self, indices) -> Calibration:
        """The same calibration for a subset of its questions (by index), in that order."""
        pick = (lambda xs: [xs[i] for i in indices]) if self.kind != "none" else (lambda xs: xs)
        return Calibration(
            self.kind,
            [self.questions[i] for i in indices],
            self.content_free_inputs,
            pick(self.content_free_logodds) if self.content_free_logodds else [],
            self.shift,
            pick(self.platt_a) if self.platt_a else [],
            pick(self.platt_b) if self.platt_b else [],
        )

    def to_dict(self) -> dict:
        return asdict(self) | {"content_free_inputs": list(self.content_free_inputs)}

    @classmethod
    def from_dict(cls, d: dict | None) -> Calibration:
        return cls() if not d else cls(**d)

    def describe(self) -> str:
        if self.kind == "none":
            return "none (raw P(yes); binary = P(yes) > 0.5)"
        if self.kind == "platt":
            return "platt (per-question logistic fit on labelled pairs)"
        text = f"contextual (minus each question's mean log-odds on {list(self.content_free_inputs)})"
        return text + (f", then minus a global shift of {self.shift:.2f}" if self.kind == "shifted" else "")


def fit_shift(logodds_contextual, labels) -> float:
    """The global shift whose decision (z - shift > 0) says yes as often as the labels do.

    logodds_contextual: (n,) contextual log-odds of labelled pairs (any questions, pooled); labels (n,) in {0, 1}.
    Why match the rate rather than maximise accuracy: with rare yeses (~8 % on the project's gold set) the most
    accurate rule says yes far too rarely on balanced tasks; a shift that reproduces the yes-rate is one number
    that transferred from the gold set's questions to D3's unseen ones (README, `qaemb-fast eval calibration`).
    """
    z, y = np.asarray(logodds_contextual, dtype=np.float64), np.asarray(labels).astype(int)
    if z.shape != y.shape or z.size == 0:
        raise CalibrationError(f"fit_shift needs as many labels as answers, got {z.shape} and {y.shape}")
    return float(np.quantile(z, 1.0 - y.mean()))


def fit_platt(p_yes, labels, C: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-question Platt scaling: (a (Q,), b (Q,)) from a logistic regression of labels on the raw log-odds.

    p_yes, labels: (n, Q). A question whose labels are all one class keeps a = 1 and gets b pushing toward that
    class (there is nothing to fit a slope on).
    """
    from sklearn.linear_model import LogisticRegression

    z, y = logit(p_yes), np.asarray(labels).astype(int)
    a, b = np.ones(z.shape[1]), np.zeros(z.shape[1])
    for q in range(z.shape[1]):
        if y[:, q].min() == y[:, q].max():
            b[q] = -np.median(z[:, q]) + (4.0 if y[0, q] else -4.0)
            continue
        model = LogisticRegression(C=C, solver="newton-cholesky").fit(z[:, q : q + 1], y[:, q])
        a[q], b[q] = float(model.coef_[0, 0]), float(model.intercept_[0])
    return a, b


def content_free_logodds(teacher, questions, inputs=CONTENT_FREE_INPUTS, batch_size: int = 32) -> np.ndarray:
    """z_cf (Q,): each question's mean raw log-odds over the content-free inputs (Zhao et al. 2021).

    teacher: a `distill.teacher.Teacher` (its raw answers are used, whatever its own calibration).
    """
    raw = np.stack([teacher.answer_text(text, list(questions), batch_size) for text in inputs])
    return logit(raw).mean(0)


def make_calibration(kind: str, teacher, questions, shift: float | None = None) -> Calibration:
    """The calibration `kind` for `questions` with `teacher`: computes the content-free log-odds where needed.
    shift: for "shifted" (default: DEFAULT_SHIFT, fitted for the default teacher and prompt)."""
    if kind == "platt":
        raise CalibrationError("platt calibration is fitted on labelled pairs (fit_platt), not made from a teacher")
    if kind == "none":
        return Calibration("none", list(questions))
    z_cf = content_free_logodds(teacher, questions)
    shift = DEFAULT_SHIFT if shift is None else float(shift)
    return Calibration(
        kind, list(questions), content_free_logodds=z_cf.tolist(), shift=shift if kind == "shifted" else 0.0
    )
