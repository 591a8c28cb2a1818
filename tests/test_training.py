"""Tests for training/: document split, bucketed batches, metrics, the Trainer wiring, and real (short) training.

Data: a labelled dataset whose answers truly depend on the text (a question is "yes" when one of its keywords is in
the text, with soft noise), so a student that learns anything measurable must beat the training-mean baseline.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from distill.labelled_dataset import LabelledDatasetError, write_labelled_dataset
from qaemb_fast.questions import QuestionSet
from qaemb_fast.student import StudentConfig, StudentModel
from training.data import LabelledDataModule, LengthBucketBatchSampler, split_by_document
from training.module import evaluate_against_baseline, question_metrics
from training.train import TrainConfig, build_trainer, resolve_precision, train

KEYWORDS = {
    "Does the text mention an animal?": [
        "dog",
        "cat",
        "horse",
        "cow",
        "bird",
        "fish",
        "sheep",
        "lion",
        "tiger",
        "mouse",
        "rabbit",
        "bear",
        "wolf",
        "fox",
    ],
    "Does the text mention food?": [
        "bread",
        "cheese",
        "apple",
        "pizza",
        "soup",
        "rice",
        "cake",
        "pasta",
        "butter",
        "salad",
        "banana",
        "sandwich",
    ],
    "Does the text mention a color?": [
        "red",
        "blue",
        "green",
        "yellow",
        "purple",
        "orange",
        "black",
        "white",
        "pink",
        "brown",
        "grey",
        "violet",
    ],
}
FILLER = [
    "the",
    "a",
    "man",
    "woman",
    "walked",
    "to",
    "house",
    "went",
    "road",
    "quickly",
    "slowly",
    "yesterday",
    "morning",
    "city",
    "car",
    "book",
    "window",
    "river",
]
# A question the "teacher" always answers no: it has a single class in every split, so AUC must skip it.
QUESTIONS = [*KEYWORDS, "Is the text written in French?"]


def keyword_rows(n_docs: int, per_doc: int, seed: int = 0):
    """texts, doc_ids, answers (n, 4): P(yes) ~0.9 when a keyword of the question is present, ~0.1 otherwise."""
    rng = np.random.default_rng(seed)
    texts, doc_ids, answers = [], [], []
    for d in range(n_docs):
        for _ in range(per_doc):
            words, row = list(rng.choice(FILLER, 8)), []
            for vocab in KEYWORDS.values():
                present = rng.random() < 0.4
                if present:
                    words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(vocab)))
                row.append((0.9 if present else 0.1) + rng.uniform(-0.08, 0.08))
            row.append(0.03)
            texts.append(" ".join(words))
            doc_ids.append(f"story-{d}")
            answers.append(row)
    return texts, doc_ids, np.clip(np.array(answers, dtype=np.float32), 0, 1)


def write_keyword_dataset(folder: Path, n_docs=30, per_doc=10, seed=0, questions=QUESTIONS) -> Path:
    texts, doc_ids, answers = keyword_rows(n_docs, per_doc, seed)
    return write_labelled_dataset(
        folder,
        texts,
        doc_ids,
        answers,
        {"questions": questions, "teacher": "keyword rules", "labelled_by": ["chunks 0-29: keyword rules on a cpu"]},
    )


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models (tests/conftest.py)


def tiny_student(tokenizer, questions=QUESTIONS) -> StudentModel:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    encoder = BertModel(cfg)
    config = StudentConfig(questions=list(questions), backbone_config=encoder.config.to_dict(), backbone_name="tiny-bert",
                           max_length=64)  # fmt: skip
    return StudentModel(config, encoder=encoder, tokenizer=tokenizer)


def quiet(**kw) -> dict:
    return {"enable_progress_bar": False, "log_every_n_steps": 1, **kw}


# ----------------------------------------------------------------------------- split and batches


def test_split_by_document_never_shares_a_document():
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 40, size=60)  # documents of very different sizes
    doc_ids = np.repeat([f"d{i}" for i in range(60)], sizes)
    split = split_by_document(doc_ids, val_fraction=0.1, test_fraction=0.2, seed=3)
    docs = {name: set(doc_ids[idx]) for name, idx in split.items()}
    assert not docs["train"] & docs["val"] and not docs["train"] & docs["test"] and not docs["val"] & docs["test"]
    assert sorted(np.concatenate(list(split.values()))) == list(range(len(doc_ids)))  # every row exactly once
    n = len(doc_ids)
    assert 0.2 <= len(split["test"]) / n < 0.2 + 40 / n and 0.1 <= len(split["val"]) / n < 0.1 + 40 / n
    again = split_by_document(doc_ids, val_fraction=0.1, test_fraction=0.2, seed=3)
    assert all(np.array_equal(split[k], again[k]) for k in split)  # deterministic
    other = split_by_document(doc_ids, val_fraction=0.1, test_fraction=0.2, seed=4)
    assert not np.array_equal(split["test"], other["test"])


def test_split_needs_enough_documents():
    with pytest.raises(LabelledDatasetError, match="at least 3 documents"):
        split_by_document(["a", "a", "b"], 0.1, 0.1)
    one_each = split_by_document(["a", "b", "c"], 0.1, 0.1)  # tiny fractions still get one document each
    assert {k: len(v) for k, v in one_each.items()} == {"train": 1, "val": 1, "test": 1}
    assert len(split_by_document(["a"], 0.0, 0.0)["train"]) == 1


def test_length_bucket_batches_cover_every_text_once_and_group_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 100, size=1000)
    sampler = LengthBucketBatchSampler(torch.utils.data.RandomSampler(range(1000)), 16, False, lengths,
                                       bucket_batches=10, shuffle=True, seed=0)  # fmt: skip
    epoch1, epoch2 = list(sampler), list(sampler)
    assert len(epoch1) == len(sampler) == int(np.ceil(1000 / 16))
    assert sorted(i for b in epoch1 for i in b) == list(range(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in epoch1])
    random_spread = np.mean([np.ptp(lengths[rng.permutation(1000)[:16]]) for _ in range(50)])
    assert spread < random_spread / 4  # batches hold similar lengths, so padding is small
    assert [len(b) for b in epoch1] != [len(b) for b in epoch2] or epoch1 != epoch2  # new order each epoch
    dropped = LengthBucketBatchSampler(range(1000), 16, True, lengths, bucket_batches=10)
    assert len(list(dropped)) == len(dropped) == 1000 // 16


def test_datamodule_splits_pads_per_batch_and_computes_train_mean(tmp_path, tokenizer):
    data = write_keyword_dataset(tmp_path / "data", n_docs=20, per_doc=5)
    dm = LabelledDataModule(data, tokenizer, batch_size=8, max_length=64, val_fraction=0.2, test_fraction=0.2)
    dm.setup("fit")
    assert sum(s["texts"] for s in dm.split_sizes.values()) == 100
    assert sum(s["documents"] for s in dm.split_sizes.values()) == 20
    _, doc_ids, answers = keyword_rows(20, 5)
    train_rows = split_by_document(doc_ids, 0.2, 0.2, seed=0)["train"]
    np.testing.assert_allclose(dm.train_mean, answers[train_rows].mean(0), rtol=1e-6)
    batch = next(iter(dm.train_dataloader()))
    lengths = batch["attention_mask"].sum(1)
    assert batch["input_ids"].shape[1] == lengths.max()  # padded to this batch's longest text only
    assert batch["targets"].shape == (8, len(QUESTIONS)) and batch["targets"].dtype == torch.float32
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.pad_token_id).all()
    assert sum(len(b["targets"]) for b in dm.test_dataloader()) == dm.split_sizes["test"]["texts"]


# ----------------------------------------------------------------------------- metrics


def test_question_metrics_match_references():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    targets = rng.random((200, 3))
    targets[:, 2] = 0.2  # single class: AUC undefined
    preds = np.clip(targets + rng.normal(0, 0.2, targets.shape), 0, 1)
    m = question_metrics(preds, targets)
    assert m["auc"][0] == pytest.approx(roc_auc_score(targets[:, 0] > 0.5, preds[:, 0]))
    assert m["pearson"][1] == pytest.approx(np.corrcoef(preds[:, 1], targets[:, 1])[0, 1])
    assert np.isnan(m["auc"][2]) and np.isnan(m["pearson"][2])
    np.testing.assert_allclose(m["mae"], np.abs(preds - targets).mean(0))
    r = evaluate_against_baseline(preds, targets, train_mean=[0.5, 0.5, 0.2])
    assert r["summary"]["auc_skipped"] == 1
    assert r["summary"]["auc"] == pytest.approx(np.mean(m["auc"][:2]))
    assert r["summary"]["baseline_auc"] == 0.5 and r["summary"]["baseline_pearson"] == 0.0
    assert r["per_question"]["baseline_mae"][2] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="must both be"):
        question_metrics(preds, targets[:, :2])


def test_collected_predictions_count_each_row_once():
    from training.module import CollectPredictions

    c = CollectPredictions()
    c.update(torch.tensor([[0.1], [0.2]]), torch.tensor([[0.0], [1.0]]), torch.tensor([4, 0]))
    c.update(torch.tensor([[0.3], [0.1]]), torch.tensor([[1.0], [0.0]]), torch.tensor([2, 4]))  # row 4 repeated
    preds, targets = c.compute()
    assert preds.flatten().tolist() == pytest.approx([0.2, 0.3, 0.1]) and targets.flatten().tolist() == [1, 1, 0]


@pytest.mark.filterwarnings("ignore:.*self.log.*")
def test_loss_uses_soft_or_binarized_targets(tokenizer):
    import torch.nn.functional as F

    from training.module import StudentLightningModule

    model = tiny_student(tokenizer).eval()
    batch = {k: v for k, v in model.tokenize(["a red fox", "the old road"]).items() if k != "token_type_ids"}
    with torch.no_grad():
        logits = model(**batch)
    batch["targets"] = torch.tensor([[0.9, 0.3, 0.6, 0.0], [0.2, 0.7, 0.4, 1.0]])
    with torch.no_grad():
        soft = StudentLightningModule(model).eval()._shared_step(batch, "train")  # eval: no dropout
        hard = StudentLightningModule(model, binarize_targets=True).eval()._shared_step(batch, "train")
    torch.testing.assert_close(soft, F.binary_cross_entropy_with_logits(logits, batch["targets"]))
    torch.testing.assert_close(hard, F.binary_cross_entropy_with_logits(logits, (batch["targets"] > 0.5).float()))


@pytest.mark.filterwarnings("ignore:.*self.log.*")
def test_loss_averages_over_pairs_or_texts(tokenizer):
    import torch.nn.functional as F

    from training.module import StudentLightningModule

    model = tiny_student(tokenizer).eval()
    batch = {k: v for k, v in model.tokenize(["a red fox", "the old road", "rain"]).items() if k != "token_type_ids"}
    with torch.no_grad():
        logits = model(**batch)
    nan = float("nan")  # sparse rows: text 0 was asked 3 questions, text 1 one, text 2 none
    batch["targets"] = torch.tensor([[0.9, 0.3, 0.6, nan], [nan, nan, nan, 1.0], [nan, nan, nan, nan]])
    with torch.no_grad():
        by_pair = StudentLightningModule(model).eval()._shared_step(batch, "train")
        by_text = StudentLightningModule(model, loss_average="texts").eval()._shared_step(batch, "train")
    bce = F.binary_cross_entropy_with_logits(logits, batch["targets"].nan_to_num(0), reduction="none")
    torch.testing.assert_close(by_pair, bce[0, :3].sum().add(bce[1, 3]) / 4)
    torch.testing.assert_close(by_text, (bce[0, :3].mean() + bce[1, 3]) / 2)  # the unasked text does not count
    assert not torch.isclose(by_pair, by_text)
    with pytest.raises(ValueError, match="loss_average"):
        StudentLightningModule(model, loss_average="questions")


# ----------------------------------------------------------------------------- the Trainer


def test_trainer_receives_the_options_unchanged(tmp_path):
    from lightning.pytorch.accelerators import CPUAccelerator
    from lightning.pytorch.strategies import DDPStrategy

    config = TrainConfig(data="unused", out=str(tmp_path / "ckpt" / "x"), accelerator="cpu", devices=2, strategy="ddp",
                         num_nodes=2, precision="32-true", max_epochs=7, **quiet())  # fmt: skip
    trainer, checkpoint = build_trainer(config)
    assert isinstance(trainer.accelerator, CPUAccelerator) and isinstance(trainer.strategy, DDPStrategy)
    assert (trainer.num_devices, trainer.num_nodes, trainer.world_size) == (2, 2, 4)
    assert trainer.precision == "32-true" and trainer.max_epochs == 7
    assert checkpoint.monitor == "val/loss"
    # Raw checkpoints and logs live outside the export folder.
    assert Path(trainer.default_root_dir) == tmp_path / "ckpt" / ".lightning" / "x"


def test_auto_precision(monkeypatch):

    monkeypatch.setattr("qaemb_fast.device.cpu_supports_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16-mixed"
    monkeypatch.setattr("qaemb_fast.device.cpu_supports_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "32-true"
    assert resolve_precision("16-mixed", "gpu") == "16-mixed"  # explicit values pass through


def test_reproduce_command_parses_back_to_the_same_config():
    import argparse

    from qaemb_cli.options import config_from_args
    from qaemb_cli.train import register
    from training.train import to_command

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    config = TrainConfig(data="data/x", out="checkpoints/my model", devices=2, lr=1e-4, binarize_targets=True,
                         enable_progress_bar=False, limit_train_batches=0.5, questions="q.json",
                         extra_data=("labels/a", "labels/b c"), init_from="ckpt", question_head_width=64,
                         loss_average="texts")  # fmt: skip
    argv = __import__("shlex").split(to_command(config))
    assert argv[:2] == ["qaemb-fast", "train"]
    assert config_from_args(parser.parse_args(argv[1:]), TrainConfig) == config
    # A machine's work folder is not part of what the run learns: the card's command leaves it out.
    assert to_command(__import__("dataclasses").replace(config, work_dir="/tmp/w")) == to_command(config)


# ----------------------------------------------------------------------------- errors


def test_empty_dataset_is_a_clear_error(tmp_path, tokenizer):
    data = write_labelled_dataset(tmp_path / "empty", [], [], np.zeros((0, 4)), {"questions": QUESTIONS})
    with pytest.raises(LabelledDatasetError, match="empty"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "out"), **quiet()), model=tiny_student(tokenizer))


def test_mismatched_questions_are_a_clear_error(tmp_path, tokenizer):
    data = write_keyword_dataset(tmp_path / "data", n_docs=6, per_doc=2)
    other = tmp_path / "other.json"
    QuestionSet(("Does the text mention a boat?", *QUESTIONS[1:])).save(other)
    with pytest.raises(LabelledDatasetError, match="requested"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "out"), questions=str(other), **quiet()))
    with pytest.raises(ValueError, match="val_fraction and test_fraction must be > 0"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "out"), test_fraction=0.0, **quiet()))
    with pytest.raises(ValueError, match="other questions"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "out"), **quiet()),
              model=tiny_student(tokenizer, questions=QUESTIONS[:3]))  # fmt: skip


# ----------------------------------------------------------------------------- training


def test_fast_dev_run_on_a_tiny_bert_exports_a_loadable_folder(tmp_path, tokenizer):
    data = write_keyword_dataset(tmp_path / "data", n_docs=10, per_doc=4)
    out = train(TrainConfig(data=str(data), out=str(tmp_path / "ckpt" / "tiny"), fast_dev_run=1, batch_size=4, **quiet()),
                model=tiny_student(tokenizer))  # fmt: skip
    loaded = StudentModel.from_pretrained(out)
    assert loaded.questions == QUESTIONS
    assert loaded.config.metrics["test"]["n_texts"] == 4  # fast_dev_run: one test batch
    assert loaded.config.teacher["teacher"] == "keyword rules"
    assert (out / "README.md").exists() and not list(out.rglob("*.ckpt"))


def test_same_seed_same_weights(tmp_path, tokenizer):
    from safetensors.torch import load_file

    data = write_keyword_dataset(tmp_path / "data", n_docs=10, per_doc=4)
    weights, initial = [], []
    for run in ("a", "b"):
        __import__("lightning").seed_everything(0)
        model = tiny_student(tokenizer)
        initial.append(model.head.weight.detach().clone())
        config = TrainConfig(data=str(data), out=str(tmp_path / run), fast_dev_run=2, batch_size=4, lr=1e-2, **quiet())
        weights.append(load_file(str(train(config, model=model) / "model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    trained = weights[0]["head.weight"].float()
    assert not torch.allclose(trained, initial[0].to(torch.bfloat16).float())  # the two steps did train the head


def test_short_training_learns_keyword_questions_and_exports_them(tmp_path):
    data = write_keyword_dataset(tmp_path / "data", n_docs=30, per_doc=10)
    __import__("lightning").seed_everything(0)  # the head is initialised here, before train() seeds
    model = StudentModel.from_backbone(None, questions=QUESTIONS, max_length=64)  # the packaged MiniLM
    config = TrainConfig(data=str(data), out=str(tmp_path / "ckpt" / "keywords"), lr=2e-4, max_epochs=3, batch_size=16,
                         **quiet())  # fmt: skip
    out = train(config, model=model)

    test = json.loads((out / "config.json").read_text())["metrics"]["test"]
    assert test["auc_skipped"] == 1  # the always-"no" question
    assert test["auc"] > 0.9, test
    assert test["mae"] < test["baseline_mae"] - 0.1, test
    assert test["pearson"] > 0.7, test

    # Lightning's checkpoints stayed in the work folder, not the export.
    assert not list(out.rglob("*.ckpt")) and list((tmp_path / "ckpt" / ".lightning").rglob("*.ckpt"))
    card = (out / "README.md").read_text()
    assert f"| student | {test['auc']:.3f} | {test['pearson']:.3f} | {test['mae']:.3f} |" in card
    assert f"{test['baseline_mae']:.3f} |" in card and "| train | 240 |" in card
    assert "qaemb-fast train --data" in card and str(data) in card
    assert "Labelled on:\n\n- chunks 0-29: keyword rules on a cpu" in card

    # The export loads strictly and answers like the trained model (whose weights it stores in bf16).
    loaded = StudentModel.from_pretrained(out)
    reference = copy.deepcopy(model).eval()
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(p.to(torch.bfloat16).float())
        batch = loaded.tokenize(["The brown dog ate some bread.", "the man walked to the city"])
        torch.testing.assert_close(loaded(**batch), reference(**batch), rtol=0, atol=0)
        probs = loaded(**batch).sigmoid()
    assert probs[0, :3].min() > 0.5 > probs[1, :3].max()  # animal, food, color: yes in text 0, no in text 1


TRAIN_JOB = """
import sys
sys.path.insert(0, {tests!r})
import torch
from transformers import AutoTokenizer
from test_training import tiny_student, write_keyword_dataset
from qaemb_fast.jobs import Interrupted
from qaemb_fast.student import default_backbone_path
from training.train import TrainConfig, train

torch.set_num_threads(1)
data = write_keyword_dataset(__import__("pathlib").Path({data!r}), n_docs=20, per_doc=5)
tokenizer = AutoTokenizer.from_pretrained(str(default_backbone_path()), local_files_only=True)
try:
    train(TrainConfig(data=str(data), out={out!r}, max_epochs=1000, patience=1000, batch_size=4,
                      enable_progress_bar=False, log_every_n_steps=1), model=tiny_student(tokenizer))
except Interrupted as e:
    sys.exit(e.exit_code)
"""


@pytest.mark.parametrize("sig, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_stops_training_promptly_and_exits_nonzero(tmp_path, sig, status):
    """Lightning alone turns Ctrl-C into exit status 1 and SIGTERM into a SystemExit with status 0 (success);
    training must stop at once with 130 / 143, export nothing, and keep Lightning's checkpoints."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "ckpt" / "tiny"
    code = TRAIN_JOB.format(tests=str(Path(__file__).parent), data=str(tmp_path / "data"), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    work = tmp_path / "ckpt" / ".lightning" / "tiny"
    end = time.time() + 120
    # Wait until an epoch has been checkpointed (training is under way), then signal.
    while not list(work.rglob("*.ckpt")) and proc.poll() is None and time.time() < end:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(getattr(signal, sig))
    sent = time.time()
    assert proc.wait(timeout=60) == status, proc.stderr.read()[-3000:]
    assert time.time() - sent < 10
    assert not out.exists()  # no student exported from an interrupted run
    assert list(work.rglob("*.ckpt"))  # the best epoch so far is kept
