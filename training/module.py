"""The LightningModule: training logic around the plain `StudentModel` (which lives in qaemb_fast and knows nothing
about Lightning, so inference never imports it).

    batch {"input_ids", "attention_mask", "targets" (B, Q) teacher P(yes), NaN where not asked}
      -> StudentModel -> logits (B, Q) -> BCE-with-logits against the soft targets (or P > 0.5 when binarized),
         averaged over the asked pairs

With `questions`, the logits come from the student's question head, for each question from its embedding. By default
the encoder and the fixed head are frozen and each question's embedding is computed once, by the very encoder that
embeds it at inference. With `tune_encoder` they all learn together: every step embeds the batch's asked questions
through the encoder (with gradients), and the loss adds the fixed head's on its own questions, so the rows the
student answers its trained questions with move with the encoder they read.

One shared step serves train/val/test. Validation and test collect every prediction (synced across processes
under DDP) and score each question against the teacher:
  - ROC-AUC against the teacher's yes/no (P > 0.5); questions with one class in the split are skipped and counted;
  - Pearson r against the teacher's P(yes);
  - mean absolute error against the teacher's P(yes);
and the same for the baseline that answers every text with the question's mean P(yes) on the training split.
A constant has ROC-AUC 0.5 by definition and no Pearson r (zero variance): we report r = 0 for it.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from qaemb_fast.student import StudentModel

# ----------------------------------------------------------------------------- metrics


def question_metrics(preds, targets) -> dict[str, np.ndarray]:
    """Per-question scores of predicted P(yes) against the teacher's P(yes).

    preds, targets: (n, Q) arrays in [0, 1]; a NaN target is a pair that was never asked, and each question is
    scored on its asked rows. Returns {"auc", "pearson", "mae", "n"}, each (Q,) float64; "auc" is NaN where the
    teacher's yes/no (P > 0.5) has a single class in these rows, "pearson" NaN where either side is constant or
    fewer than 2 rows were asked, "n" the asked rows.
    """
    # torchmetrics (installed with lightning) rather than sklearn, which training does not otherwise need.
    from torchmetrics.functional.classification import binary_auroc

    preds, targets = np.asarray(preds, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    if preds.shape != targets.shape or preds.ndim != 2:
        raise ValueError(f"preds {preds.shape} and targets {targets.shape} must both be (n, Q)")
    if np.isnan(targets).any():  # sparse: score each question on its own asked rows
        per = [question_metrics(preds[m, k : k + 1], targets[m, k : k + 1]) for k, m in enumerate(~np.isnan(targets).T)]
        return {
            key: np.array([p[key][0] if len(p[key]) else np.nan for p in per]) for key in ("auc", "pearson", "mae", "n")
        }
    if len(targets) < 2:
        nan = np.full(preds.shape[1], np.nan)
        return {"auc": nan, "pearson": nan, "mae": np.abs(preds - targets).mean(0) if len(targets) else nan,
                "n": np.full(preds.shape[1], float(len(targets)))}  # fmt: skip
    labels = targets > 0.5
    auc = np.full(preds.shape[1], np.nan)
    for k in range(preds.shape[1]):
        if 0 < labels[:, k].sum() < len(labels):
            auc[k] = binary_auroc(torch.from_numpy(preds[:, k]), torch.from_numpy(labels[:, k]).long()).item()
    pc, tc = preds - preds.mean(0), targets - targets.mean(0)
    denom = np.sqrt((pc**2).sum(0) * (tc**2).sum(0))
    # Constant columns are tested on the raw values: their centred sums are rounding noise, not zero.
    constant = (np.ptp(preds, axis=0) == 0) | (np.ptp(targets, axis=0) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pearson = np.where(constant, np.nan, (pc * tc).sum(0) / denom)
    mae = np.abs(preds - targets).mean(0)
    return {"auc": auc, "pearson": pearson, "mae": mae, "n": np.full(preds.shape[1], float(len(targets)))}


def evaluate_against_baseline(preds, targets, train_mean) -> dict:
    """Student and training-mean baseline scores on the same rows.

    preds, targets: (n, Q); train_mean: (Q,). Returns {"per_question": {"auc", "pearson", "mae",
    "baseline_mae"}: (Q,) arrays, "summary": {"auc", "pearson", "mae", "baseline_auc", "baseline_pearson",
    "baseline_mae", "auc_skipped", "n_texts"}: floats}. Means skip NaNs (questions without two classes / variance).
    """
    targets = np.asarray(targets, dtype=np.float64)
    student = question_metrics(preds, targets)
    errors = np.abs(targets - np.asarray(train_mean, dtype=np.float64)[None, :])
    asked_rows = (~np.isnan(errors)).sum(axis=0)
    baseline_mae = np.where(asked_rows > 0, np.nansum(errors, axis=0) / np.maximum(asked_rows, 1), np.nan)
    asked = student["n"] > 0
    scored = ~np.isnan(student["auc"])

    def nanmean(x):
        x = x[~np.isnan(x)]
        return float(x.mean()) if len(x) else float("nan")

    summary = {
        "auc": nanmean(student["auc"]),
        "pearson": nanmean(student["pearson"]),
        "mae": nanmean(student["mae"]),
        # A constant ranks every text the same: ROC-AUC 0.5 on every question that has both classes.
        "baseline_auc": 0.5 if scored.any() else float("nan"),
        "baseline_pearson": 0.0,  # undefined for a constant; reported as 0 (no linear relation)
        "baseline_mae": nanmean(baseline_mae),
        "auc_skipped": int((~scored & asked).sum()),
        "not_asked": int((~asked).sum()),
        "n_texts": len(targets),
    }
    return {"per_question": {**student, "baseline_mae": baseline_mae}, "summary": summary}


class CollectPredictions(Metric):
    """Keeps every (row index, P(yes), target) of an epoch. Under DDP `compute()` gathers them from all processes
    and drops the duplicates DistributedSampler adds to give every process the same number of rows, so held-out
    metrics are computed on each text exactly once."""

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")
        self.add_state("index", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, targets: torch.Tensor, index: torch.Tensor) -> None:
        self.preds.append(preds.detach().float())
        self.targets.append(targets.detach().float())
        self.index.append(index.detach())

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        preds, targets, index = dim_zero_cat(self.preds), dim_zero_cat(self.targets), dim_zero_cat(self.index)
        order = torch.argsort(index, stable=True)
        keep = torch.ones_like(index, dtype=torch.bool)
        keep[1:] = index[order][1:] != index[order][:-1]  # first occurrence of each row
        return preds[order][keep], targets[order][keep]


# ----------------------------------------------------------------------------- the LightningModule


class StudentLightningModule(L.LightningModule):
    """Trains a `StudentModel` on teacher answers. Only plain values go into the hyperparameters; the model is
    passed in (and kept out of `hparams`), so the same module trains any backbone.

    After `trainer.test(...)`: `test_results` holds `evaluate_against_baseline(...)` on the test split.
    """

    def __init__(self, model: StudentModel, lr: float = 5e-5, weight_decay: float = 0.01, warmup_ratio: float = 0.1,
                 binarize_targets: bool = False, questions: list[str] | None = None, tune_encoder: bool = False,
                 loss_average: str = "pairs"):  # fmt: skip
        super().__init__()
        if loss_average not in ("pairs", "texts"):
            raise ValueError(f"loss_average must be 'pairs' or 'texts', got {loss_average!r}")
        self.save_hyperparameters(ignore=["model", "questions"])
        # Lightning keeps each submodule's train/eval mode as it finds it, and `from_backbone` returns an eval-mode
        # model (ready for inference): switch it to train mode, or it would train without dropout.
        self.model = model.train()
        # questions: train the question head on these (the data's columns); None: the fixed head's questions.
        self.questions = list(questions) if questions is not None else None
        if tune_encoder and self.questions is None:
            raise ValueError("tune_encoder trains the encoder with a question head: pass the questions it learns")
        if self.questions is not None and model.question_head is None:
            raise ValueError("training on questions needs a student with a question head (question_head_width > 0)")
        if self.questions is not None and tune_encoder:
            # Everything learns: the questions are tokenized once and embedded at every step, with gradients.
            tokens = model.tokenize_questions(self.questions)
            self.register_buffer("question_ids", tokens["input_ids"], persistent=False)
            self.register_buffer("question_mask", tokens["attention_mask"], persistent=False)
            index = {q: i for i, q in enumerate(model.questions)}
            fixed = torch.tensor([index.get(q, -1) for q in self.questions], dtype=torch.long)
            self.register_buffer("fixed_index", fixed, persistent=False)  # column -> fixed-head row, -1: none
        elif self.questions is not None:
            # Frozen encoder and fixed head: only the question head learns, and each question's embedding is computed
            # once, by the very encoder that embeds it at inference.
            model.encoder.requires_grad_(False)
            model.head.requires_grad_(False)
            model.encoder.eval()
            with torch.no_grad():
                embeddings = model.question_embeddings(self.questions).float()
            self.register_buffer("question_embeddings", embeddings, persistent=False)
        n = len(self.questions) if self.questions is not None else model.num_questions
        # The baseline's answers; set from the DataModule's training split in setup(), saved with the checkpoint.
        self.register_buffer("train_mean", torch.full((n,), 0.5))
        self.collected = torch.nn.ModuleDict({"val": CollectPredictions(), "test": CollectPredictions()})
        self.val_results: dict | None = None
        self.test_results: dict | None = None

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        train_mean = getattr(dm, "train_mean", None)
        if train_mean is not None:
            if len(train_mean) != len(self.train_mean):
                raise ValueError(f"the data has {len(train_mean)} questions, the model answers {len(self.train_mean)}")
            self.train_mean.copy_(torch.as_tensor(train_mean))

    def forward(self, input_ids, attention_mask) -> torch.Tensor:
        if self.questions is None:
            return self.model(input_ids, attention_mask)
        if self.hparams.tune_encoder:
            every = torch.ones((len(input_ids), len(self.questions)), dtype=torch.bool, device=input_ids.device)
            return self.tuned_logits(input_ids, attention_mask, every)[0]
        rows = self.model.question_rows(self.questions, self.question_embeddings, use_fixed_head=False)
        return self.model(input_ids, attention_mask, rows=rows)

    def on_train_epoch_start(self) -> None:
        if self.questions is not None and not self.hparams.tune_encoder:
            self.model.encoder.eval()  # frozen: no dropout, so its features are the ones inference sees

    def tuned_logits(self, input_ids, attention_mask, asked) -> tuple[torch.Tensor, torch.Tensor]:
        """With tune_encoder: (question-head logits (B, Q), 0 for columns no text in the batch was asked; fixed-head
        logits (B, Q), 0 for columns the fixed head does not answer). Only the asked (B, Q) columns' questions are
        embedded, through the training encoder."""
        columns = asked.any(dim=0).nonzero().flatten()
        mask = self.question_mask[columns]
        length = int(mask.sum(dim=1).max()) if len(columns) else 1
        embeddings = self.model.embed_tokens(self.question_ids[columns, :length], mask[:, :length])
        projected = self.model.question_head.project_questions(embeddings)
        pooled, tokens = self.model.features(input_ids, attention_mask, question_head=True)
        rows = (torch.full_like(columns, -1), projected)
        head = self.model.answer(pooled, rows, tokens, attention_mask).float()
        question_logits = head.new_zeros(asked.shape).index_copy(1, columns, head)
        fixed = self.fixed_index >= 0
        fixed_logits = head.new_zeros(asked.shape)
        fixed_logits[:, fixed] = self.model.head(pooled)[:, self.fixed_index[fixed]].float()
        return question_logits, fixed_logits

    def _shared_step(self, batch: dict, stage: str) -> torch.Tensor:
        targets = batch["targets"].float()
        asked = ~torch.isnan(targets)  # sparse data: only asked pairs count
        goal = (targets > 0.5).float() if self.hparams.binarize_targets else targets
        if self.hparams.tune_encoder:
            logits, fixed_logits = self.tuned_logits(batch["input_ids"], batch["attention_mask"], asked)
        else:
            logits = self(batch["input_ids"], batch["attention_mask"]).float()  # loss in fp32 even under bf16 autocast
        loss = self.masked_loss(logits, goal, asked)
        if self.hparams.tune_encoder:  # the fixed head learns its own questions beside the question head
            on_fixed = asked & (self.fixed_index >= 0)
            loss = loss + self.masked_loss(fixed_logits, goal, on_fixed)
        n = len(targets)
        if stage == "train":
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        else:
            self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True)
            self.collected[stage].update(torch.sigmoid(logits), targets, batch["index"])
        return loss

    def masked_loss(self, logits, goal, asked) -> torch.Tensor:
        """Binary cross-entropy over the asked (B, Q) pairs, averaged per `loss_average`: over all pairs, or per
        text first and then over the texts with any pair. No pair: a zero that still reaches every parameter (DDP
        needs each parameter's gradient)."""
        if not asked.any():
            return logits.sum() * 0
        if self.hparams.loss_average == "pairs":
            return F.binary_cross_entropy_with_logits(logits[asked], goal[asked])
        losses = F.binary_cross_entropy_with_logits(logits, goal.nan_to_num(0.0), reduction="none")
        per_text = asked.sum(dim=1)
        weights = asked / per_text.clamp(min=1).unsqueeze(1)  # each text's pairs sum to 1
        return (losses * weights).sum() / (per_text > 0).sum()

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._shared_step(batch, "test")

    def _end_epoch(self, stage: str) -> dict:
        preds, targets = self.collected[stage].compute()  # every process gets the gathered rows
        self.collected[stage].reset()
        results = evaluate_against_baseline(preds.cpu().numpy(), targets.cpu().numpy(), self.train_mean.cpu().numpy())
        for key, value in results["summary"].items():
            # Identical on every process (gathered above): sync_dist only averages equal values (and tells Lightning
            # that all processes agree, which ModelCheckpoint/EarlyStopping need under DDP).
            self.log(f"{stage}/{key}", float(value), prog_bar=key in ("auc", "mae"), sync_dist=True)
        return results

    def on_validation_epoch_end(self) -> None:
        self.val_results = self._end_epoch("val")

    def on_test_epoch_end(self) -> None:
        self.test_results = self._end_epoch("test")

    def configure_optimizers(self):
        from transformers import get_linear_schedule_with_warmup

        # The usual BERT recipe: no weight decay on biases and LayerNorm weights.
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
        groups = [
            {"params": decay, "weight_decay": self.hparams.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=self.hparams.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))  # epochs x batches / devices / accumulation
        warmup = int(self.hparams.warmup_ratio * total)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
