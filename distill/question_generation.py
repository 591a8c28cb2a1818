"""Propose new yes/no questions with the teacher LLM, as the paper did with GPT-4.

    texts ──► prompt (a few example texts + a few existing questions for style) ──► model.generate (sampled)
          ──► parse_questions (lists, quotes, markdown, missing '?')  ──► check_question (yes/no, about the input)
          ──► drop near-duplicates: same normalised text, or MiniLM cosine > threshold, against the existing set
              and the questions kept so far  ──► QuestionSet

Every round shows the model a different seeded sample of example texts and existing questions, so the proposals
vary; rounds continue until `n` new questions are kept or `max_rounds` is reached. Sampling is seeded per round
(`torch.manual_seed(seed + round)`), so the same model, texts and settings give the same questions.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

import numpy as np

from qaemb_fast.questions import QuestionSet, as_question_set, normalize_question

# Auxiliary verbs that open a yes/no question. "What/How/Why ..." questions have no yes/no answer.
YES_NO_STARTS = (
    "does", "do", "did", "is", "are", "was", "were", "has", "have", "had",
    "can", "could", "will", "would", "should", "might", "may",
)  # fmt: skip
# How LLMs say "the input" in other words; rewritten so every question reads like the packaged set.
SUBJECT_SYNONYMS = r"(?:input text|input|text|sentence|passage|excerpt|review|story|quote|document|paragraph|snippet)"
_SUBJECT = re.compile(rf"\bthe (?:given |provided )?{SUBJECT_SYNONYMS}\b", re.IGNORECASE)
_LIST_MARKER = re.compile(
    r"^\s*(?:[-*•·–]+|\(?\d{1,3}[.):\]]|\(?[a-zA-Z][.)]|q\d{0,3}\s*[:.)]|question\s*\d*\s*[:.)])\s*", re.I
)
_QUOTES = "\"'“”‘’`«»"
MIN_WORDS, MAX_WORDS = 4, 30

SYSTEM_PROMPT = "You are a helpful assistant who writes clear, simple yes/no questions."
USER_PROMPT = """Here are some example texts:
{examples}

Write {m} new, diverse yes/no questions that describe the meaning of texts like these: what they mention, describe \
or express (topics, things, actions, feelings, places, style). Each question must start with "Does the input", be \
answerable with yes or no for any text, and end with "?". Ask about one thing per question. Keep the questions \
general: ask about kinds of content that many texts could have, never about a name, product or person that only \
appears in these examples. Do not repeat these existing questions:
{existing}

Return only a numbered list of questions and nothing else."""


class QuestionGenerationError(RuntimeError):
    """The teacher produced no usable new question."""


# ----------------------------------------------------------------------------------------------------------------
# Parsing: raw LLM text -> candidate question strings


def parse_questions(output: str) -> list[str]:
    """Candidate questions from an LLM's free-text answer, in order, cleaned but not yet validated.

    Handles numbered / bulleted / lettered lists ("1.", "2)", "-", "*", "•", "a)", "Q3:"), markdown emphasis,
    surrounding quotes, several questions on one line, text after the '?' ("Does X? (e.g. ...)"), and a
    missing '?' on a line that reads like a question. Lines that are not questions ("Here are 10 questions:")
    are dropped.
    """
    out = []
    for line in output.replace("\r", "\n").split("\n"):
        line = _LIST_MARKER.sub("", line.replace("**", "").replace("__", "")).strip()
        line = line.strip(_QUOTES + " ").strip()
        if not line:
            continue
        if "?" in line:
            # Every "...?" piece is a question; what follows the last '?' is commentary.
            pieces = [p + "?" for p in line.split("?")[:-1]]
        elif _looks_like_question(line):
            pieces = [line.rstrip(".:;,!") + "?"]
        else:
            continue
        for p in pieces:
            p = _LIST_MARKER.sub("", p.strip(_QUOTES + " ")).strip(_QUOTES + " ")
            if p and p != "?":
                out.append(re.sub(r"\s+", " ", p))
    return out


def _looks_like_question(line: str) -> bool:
    words = line.split()
    return bool(words) and words[0].lower().strip(_QUOTES) in YES_NO_STARTS and len(words) >= MIN_WORDS


def clean_question(q: str) -> str:
    """Canonical form: 'the text/sentence/passage…' -> 'the input', one space, capitalised, ends with '?'."""
    q = re.sub(r"\s+", " ", q).strip().strip(_QUOTES).strip()
    q = re.sub(r"\s+\?$", "?", q)
    q = _SUBJECT.sub("the input", q)
    q = re.sub(r"(\bthe input\b.*?) (?:in|from) the input\?$", r"\1?", q)  # "Does the input mention X in the input?"
    return q[:1].upper() + q[1:]


def check_question(q: str) -> str | None:
    """None if `q` is a well-formed yes/no question about the input, else the reason it is not."""
    words = q.split()
    if not q.endswith("?") or q.count("?") != 1:
        return "not a single question ending in '?'"
    if not words or words[0].lower() not in YES_NO_STARTS:
        return "not a yes/no question"
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return f"length {len(words)} words outside [{MIN_WORDS}, {MAX_WORDS}]"
    if "the input" not in q.lower():
        return "does not ask about the input"
    if re.search(r"[{}<>\[\]|\\]|https?:", q) or not q.isprintable():
        return "contains markup or odd characters"
    if sum(c.isalpha() for c in q) < 0.6 * len(q.replace(" ", "")):
        return "mostly not letters"
    if " or not" in q.lower():
        return "ends with 'or not' (ill-formed yes/no)"
    return None


# ----------------------------------------------------------------------------------------------------------------
# Filtering: validity + near-duplicates


@dataclass
class CandidateFilter:
    """Keeps valid questions that are neither textual nor semantic near-duplicates of what it has seen.

    existing: the questions new ones must differ from. embed: texts -> (n, d) unit vectors (None: text only).
    threshold: drop a candidate whose cosine similarity to an existing or kept question exceeds this.
    """

    existing: list[str]
    embed: object = None
    threshold: float = 0.9
    kept: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (question, reason)

    def __post_init__(self):
        self._norms = {normalize_question(q): q for q in self.existing}
        self._vectors = self.embed(self.existing) if (self.embed is not None and self.existing) else None

    def add(self, candidates) -> list[str]:
        """Filter `candidates` (raw strings); returns the newly kept ones (also appended to .kept)."""
        fresh = []
        for raw in candidates:
            q = clean_question(raw)
            reason = check_question(q)
            if reason is None and normalize_question(q) in self._norms:
                reason = f"same text as {self._norms[normalize_question(q)]!r}"
            if reason is not None:
                self.dropped.append((raw, reason))
                continue
            self._norms[normalize_question(q)] = q
            fresh.append(q)
        if self.embed is None or not fresh:
            self.kept += fresh
            return fresh
        # Greedy in proposal order: a candidate is compared with everything kept before it, including this batch.
        vecs = self.embed(fresh)
        new = []
        for q, v in zip(fresh, vecs):
            if self._vectors is not None and len(self._vectors):
                sims = self._vectors @ v
                j = int(np.argmax(sims))
                if sims[j] > self.threshold:
                    self.dropped.append((q, f"similar to {(self.existing + self.kept)[j]!r} (cosine {sims[j]:.3f})"))
                    continue
            self._vectors = v[None] if self._vectors is None else np.vstack([self._vectors, v[None]])
            self.kept.append(q)
            new.append(q)
        return new


# ----------------------------------------------------------------------------------------------------------------
# Generation


@dataclass
class GenerationConfig:
    n: int = 50  # new questions wanted
    examples_per_prompt: int = 4  # example texts shown per prompt
    existing_per_prompt: int = 8  # existing questions shown per prompt (style + "do not repeat")
    proposals_per_prompt: int = 15  # questions asked for per prompt
    max_rounds: int | None = None  # prompts at most (default: 3 * ceil(n / proposals_per_prompt) + 2)
    max_words_per_example: int = 60  # long texts are cut: the prompt (and CPU time) stays small
    max_new_tokens: int = 400  # generated tokens per prompt
    temperature: float = 0.8  # sampling temperature
    top_p: float = 0.95  # nucleus sampling: the smallest set of tokens with this much probability
    seed: int = 0  # sampling seed
    similarity_threshold: float = 0.9  # drop a proposal whose MiniLM cosine similarity to a kept question exceeds this
    name: str = "generated"  # name stored in the question-set file


@dataclass
class GenerationResult:
    questions: list[str]  # the new questions, in the order they were kept
    dropped: list[tuple[str, str]]  # (proposal, why it was dropped)
    outputs: list[str]  # raw model outputs, one per round
    rounds: int


def build_messages(examples, existing, m: int) -> list[dict]:
    """The chat messages of one round: example texts, existing questions, and how many to write."""
    ex = "\n".join(f'{i}. "{t}"' for i, t in enumerate(examples, 1))
    old = "\n".join(f"- {q}" for q in existing) if existing else "- (none yet)"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": USER_PROMPT.format(examples=ex, existing=old, m=m)},
    ]


def _shorten(text: str, max_words: int) -> str:
    words = text.split()
    return " ".join(words[:max_words]) + (" ..." if len(words) > max_words else "")


def generate_questions(
    model, tokenizer, texts, config: GenerationConfig | None = None, existing="default", embed=None, progress=True
) -> GenerationResult:
    """Ask `model` for new questions about texts like `texts` until `config.n` survive filtering.

    texts: example texts (list of str). existing: QuestionSet / file / "default" / list / None for none.
    embed: texts -> unit vectors for the semantic duplicate check (None: textual duplicates only).
    Raises QuestionGenerationError when nothing valid came out; returns fewer than n questions (with a
    warning on stderr) when the rounds ran out first.
    """
    import torch
    from tqdm.auto import tqdm

    config = config or GenerationConfig()
    texts = [t.strip() for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise QuestionGenerationError("no example texts given")
    if config.n < 1:
        raise ValueError(f"n must be >= 1, got {config.n}")
    existing = list(as_question_set(existing).questions) if existing is not None else []
    filt = CandidateFilter(existing, embed=embed, threshold=config.similarity_threshold)
    rounds = config.max_rounds or 3 * -(-config.n // config.proposals_per_prompt) + 2
    rng = np.random.default_rng(config.seed)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    outputs = []
    bar = tqdm(total=config.n, desc="questions", unit="q", disable=not progress)
    device = next(model.parameters()).device
    r = 0
    for r in range(rounds):
        shown = rng.choice(len(texts), size=min(config.examples_per_prompt, len(texts)), replace=False)
        pool = existing + filt.kept
        style = [pool[i] for i in rng.choice(len(pool), size=min(config.existing_per_prompt, len(pool)), replace=False)]
        examples = [_shorten(texts[i], config.max_words_per_example) for i in shown]
        messages = build_messages(examples, style, config.proposals_per_prompt)
        if getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:  # a base model: plain text, ending where the list should start
            prompt = "\n\n".join(m["content"] for m in messages) + "\n\n1."
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
        torch.manual_seed(config.seed * 1_000_003 + r)
        with torch.inference_mode():
            gen = model.generate(
                **ids,
                do_sample=True,
                temperature=config.temperature,
                top_p=config.top_p,
                max_new_tokens=config.max_new_tokens,
                pad_token_id=pad,
            )
        output = tokenizer.decode(gen[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        outputs.append(output)
        new = filt.add(parse_questions(output))
        bar.update(min(len(new), config.n - bar.n))
        if len(filt.kept) >= config.n:
            break
    bar.close()
    if not filt.kept:
        reasons = sorted({why.split(" (")[0].split(" '")[0] for _, why in filt.dropped})
        what = (
            f"{len(filt.dropped)} proposals parsed, all dropped: {'; '.join(reasons)}"
            if filt.dropped
            else "its output contained nothing that reads as a question"
        )
        raise QuestionGenerationError(
            f"the teacher proposed no valid new question in {r + 1} rounds ({what}). Try a stronger teacher, other "
            "example texts, or more --max-rounds."
        )
    if len(filt.kept) < config.n:
        print(
            f"warning: only {len(filt.kept)} of {config.n} questions after {r + 1} rounds; raise --max-rounds for more",
            file=sys.stderr,
        )
    return GenerationResult(filt.kept[: config.n], filt.dropped, outputs, r + 1)


def result_question_set(result: GenerationResult, existing=None, name: str = "generated") -> QuestionSet:
    """The new questions as a QuestionSet; with `existing`, the existing questions first, then the new ones."""
    old = list(as_question_set(existing).questions) if existing is not None else []
    return QuestionSet(tuple(old + result.questions), name=name)
