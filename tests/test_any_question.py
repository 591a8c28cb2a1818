"""Issue 14: sparse labelling jobs, training on mixed folders, the question head, and answering any question."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_label import ITEMS, QUESTIONS, make_teacher
from test_label import config as label_config
from test_training import QUESTIONS as KEYWORD_QUESTIONS
from test_training import keyword_rows, quiet, tiny_student, write_keyword_dataset

from distill.label import asked_questions, run_labelling
from distill.labelled_dataset import load_labelled_dataset, write_labelled_dataset
from qaemb_fast.embedder import QAEmbedder
from qaemb_fast.imodelsx_compat import QAEmb
from qaemb_fast.student import StudentModel, mean_pool
from training.data import LabelledDataModule, split_by_document, split_folders_by_document
from training.train import TrainConfig, train

NEW_QUESTIONS = ["Does the input mention a colour?", "Does the input mention an animal or a pet?"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models (tests/conftest.py)


# ----------------------------------------------------------------------------- sparse labelling


def test_asked_questions_are_a_seeded_sample_per_text():
    a = asked_questions("a text", 50, 7, seed=0)
    assert len(a) == 7 and len(set(a)) == 7 and list(a) == sorted(a) and a.max() < 50
    np.testing.assert_array_equal(a, asked_questions("a text", 50, 7, seed=0))  # same text, same sample
    assert not np.array_equal(a, asked_questions("a text", 50, 7, seed=1))
    assert not np.array_equal(a, asked_questions("another text", 50, 7, seed=0))
    np.testing.assert_array_equal(asked_questions("x", 5, 0), np.arange(5))  # 0: every question
    np.testing.assert_array_equal(asked_questions("x", 5, 9), np.arange(5))


def test_sparse_job_asks_each_text_k_questions_with_the_dense_answers(tmp_path):
    dense, sparse = tmp_path / "dense", tmp_path / "sparse"
    run_labelling(label_config(dense), teacher=make_teacher(), items=ITEMS)
    teacher = make_teacher()
    run_labelling(label_config(sparse, questions_per_text=2, max_chunks=1), teacher=teacher, items=ITEMS)
    run_labelling(label_config(sparse, questions_per_text=2), teacher=make_teacher(), items=ITEMS)  # resumed
    ds, prov, _ = load_labelled_dataset(sparse)
    got = np.array(ds["answers"], dtype=np.float32)
    want = np.array(load_labelled_dataset(dense)[0]["answers"], dtype=np.float32)
    assert prov["questions_per_text"] == 2 and got.shape == want.shape
    for text, row, ref in zip(ds["text"], got, want):
        asked = asked_questions(text, len(QUESTIONS), 2)
        assert np.flatnonzero(~np.isnan(row)).tolist() == asked.tolist()
        np.testing.assert_allclose(row[asked], ref[asked], atol=1e-5)  # the answers a dense job gives
    # A resumed job with another sample size is another setup.
    with pytest.raises(ValueError, match="questions_per_text"):
        run_labelling(label_config(sparse, questions_per_text=3), teacher=make_teacher(), items=ITEMS)


# ----------------------------------------------------------------------------- mixed folders


def write_sparse_dataset(folder: Path, questions, n_docs=10, per_doc=4, seed=1, keep=2) -> Path:
    """Keyword rows with the first len(questions) answers, each text asked `keep` of them (others NaN)."""
    texts, doc_ids, answers = keyword_rows(n_docs, per_doc, seed)
    answers = answers[:, : len(questions)].copy()
    rng = np.random.default_rng(seed)
    for row in answers:
        row[rng.permutation(len(questions))[keep:]] = np.nan
    provenance = {"questions": list(questions), "teacher": "keyword rules", "questions_per_text": keep}
    return write_labelled_dataset(folder, texts, [f"sparse-{d}" for d in doc_ids], answers, provenance)


def test_split_of_folders_keeps_the_first_folders_split_and_never_shares_a_document():
    docs_a = [f"a{i // 3}" for i in range(90)]
    docs_b = [f"a{i}" for i in range(10)] + [f"b{i // 2}" for i in range(60)]  # shares a0..a9 with folder a
    split = split_folders_by_document(docs_a + docs_b, [0] * 90 + [1] * 70)
    alone = split_by_document(docs_a)
    for name in ("train", "val", "test"):
        assert [i for i in split[name] if i < 90] == alone[name].tolist()
    docs = np.array(docs_a + docs_b)
    sides = [set(docs[idx]) for idx in split.values()]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert all(len(idx) for idx in split.values())


def test_datamodule_joins_questions_and_marks_unasked_pairs(tmp_path, tokenizer):
    dense = write_keyword_dataset(tmp_path / "dense", n_docs=10, per_doc=4)
    sparse = write_sparse_dataset(tmp_path / "sparse", [KEYWORD_QUESTIONS[0], *NEW_QUESTIONS], keep=2)
    dm = LabelledDataModule([dense, sparse], tokenizer, max_length=32, batch_size=8)
    dm.setup()
    assert list(dm.question_set.questions) == [*KEYWORD_QUESTIONS, *NEW_QUESTIONS]
    targets = np.concatenate([dm.splits[s].targets for s in ("train", "val", "test")])
    assert targets.shape == (80, 6)
    assert not np.isnan(targets[:, 0]).all() and np.isnan(targets).any()
    assert (~np.isnan(targets[:, 4:])).sum() > 0
    # A dense folder may not hold NaN.
    texts, doc_ids, answers = keyword_rows(4, 2)
    answers[0, 0] = np.nan
    bad = write_labelled_dataset(tmp_path / "bad", texts, doc_ids, answers, {"questions": KEYWORD_QUESTIONS})
    with pytest.raises(ValueError, match="NaN or out of range"):
        LabelledDataModule(bad, tokenizer).setup()


@pytest.mark.filterwarnings("ignore:.*self.log.*")
def test_masked_loss_ignores_unasked_pairs(tmp_path, tokenizer):
    from training.module import StudentLightningModule

    module = StudentLightningModule(tiny_student(tokenizer)).eval()  # no dropout: two forwards agree
    batch = {k: v for k, v in tiny_student(tokenizer).tokenize(["a dog", "bread"]).items() if k != "token_type_ids"}
    targets = torch.tensor([[0.9, np.nan, 0.1, 0.2], [np.nan, 0.8, np.nan, 0.1]])
    loss = module._shared_step({**batch, "targets": targets, "index": torch.arange(2)}, "train")
    logits = module(batch["input_ids"], batch["attention_mask"])
    asked = ~torch.isnan(targets)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[asked], targets[asked])
    torch.testing.assert_close(loss, expected)


# ----------------------------------------------------------------------------- the question head


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory, tokenizer):
    """A tiny trained fixed-head student (a few steps on the keyword data)."""
    root = tmp_path_factory.mktemp("base")
    data = write_keyword_dataset(root / "data", n_docs=10, per_doc=4)
    __import__("lightning").seed_everything(0)
    config = TrainConfig(data=str(data), out=str(root / "base"), fast_dev_run=2, batch_size=8, lr=1e-3, **quiet())
    return train(config, model=tiny_student(tokenizer))


@pytest.fixture(scope="module")
def any_question_checkpoint(tmp_path_factory, base_checkpoint):
    root = tmp_path_factory.mktemp("anyq")
    dense = write_keyword_dataset(root / "dense", n_docs=10, per_doc=4)
    sparse = write_sparse_dataset(root / "sparse", [KEYWORD_QUESTIONS[0], *NEW_QUESTIONS], keep=2)
    config = TrainConfig(data=str(dense), extra_data=(str(sparse),), out=str(root / "anyq"), init_from=str(base_checkpoint),
                         question_head_width=16, question_head_attention_heads=4, question_head_layer=-2, max_epochs=2,
                         batch_size=8, lr=1e-3, **quiet())  # fmt: skip
    return train(config)


def test_retraining_the_question_head_replaces_it_in_the_card(tmp_path, any_question_checkpoint, base_checkpoint):
    dense = write_keyword_dataset(tmp_path / "dense", n_docs=10, per_doc=4)
    config = TrainConfig(data=str(dense), out=str(tmp_path / "again"), init_from=str(any_question_checkpoint),
                         question_head_width=8, question_head_attention_heads=0, fast_dev_run=1, batch_size=8,
                         **quiet())  # fmt: skip
    again = StudentModel.from_pretrained(train(config))
    assert again.config.question_head_width == 8 and again.question_head.attention_heads == 0
    reproduce = (tmp_path / "again" / "README.md").read_text().split("## Reproduce", 1)[1]
    head_runs = [line for line in reproduce.splitlines() if "--question-head-width" in line]
    assert head_runs == [line for line in head_runs if "--question-head-width 8" in line] and len(head_runs) == 1
    # The card says what the frozen encoder and fixed head learned from: the first student's data and scores, passed
    # on through a question head retrained on top of another.
    base = StudentModel.from_pretrained(base_checkpoint).config.metrics
    for card in (any_question_checkpoint / "README.md", tmp_path / "again" / "README.md"):
        under = card.read_text().split("## The student under the question head", 1)[1].split("## Training", 1)[0]
        assert f"come from `{base_checkpoint}`, trained on `{base['data']['path']}`" in under
        auc = "n/a" if base["test"]["auc"] is None else f"{base['test']['auc']:.3f}"
        assert f"On its {base['test']['n_texts']} test texts its fixed head scored ROC-AUC {auc}" in under
    first = (any_question_checkpoint / "README.md").read_text()
    assert "Also trained on (`--extra-data`):" in first and "questions, 2 per text" in first


def test_question_head_training_freezes_the_encoder_and_the_fixed_head(base_checkpoint, any_question_checkpoint):
    base = StudentModel.from_pretrained(base_checkpoint)
    anyq = StudentModel.from_pretrained(any_question_checkpoint)
    assert anyq.answers_any_question and not base.answers_any_question
    base_state, state = base.state_dict(), anyq.state_dict()
    assert all(torch.equal(base_state[k], state[k]) for k in base_state)  # encoder and fixed head unchanged
    assert {k for k in state if k not in base_state} == {k for k in state if k.startswith("question_head.")}
    assert anyq.config.seen_questions == NEW_QUESTIONS
    assert anyq.is_trained_question(NEW_QUESTIONS[0]) and anyq.is_trained_question(KEYWORD_QUESTIONS[0])
    assert not anyq.is_trained_question("Does the input mention a dinosaur?")
    metrics = anyq.config.metrics
    assert metrics["questions"] == [*KEYWORD_QUESTIONS, *NEW_QUESTIONS]
    assert len(metrics["per_question"]["auc"]) == 6


@pytest.fixture(scope="module")
def tuned_checkpoint(tmp_path_factory, any_question_checkpoint):
    """The question-head student trained further with its encoder and fixed head (--tune-encoder)."""
    root = tmp_path_factory.mktemp("tuned")
    dense = write_keyword_dataset(root / "dense", n_docs=10, per_doc=4)
    sparse = write_sparse_dataset(root / "sparse", [KEYWORD_QUESTIONS[0], *NEW_QUESTIONS], keep=2)
    config = TrainConfig(data=str(dense), extra_data=(str(sparse),), out=str(root / "tuned"),
                         init_from=str(any_question_checkpoint), question_head_width=16, question_head_attention_heads=4,
                         question_head_layer=-2, tune_encoder=True, max_epochs=1, batch_size=8, lr=1e-3, **quiet())  # fmt: skip
    return train(config)


def test_tuning_the_encoder_trains_every_part_from_the_students_own_question_head(
    any_question_checkpoint, tuned_checkpoint
):
    from training.train import with_question_head

    before = StudentModel.from_pretrained(any_question_checkpoint)
    # Same settings: the question head continues from the one the student carries, not from a new one.
    again = with_question_head(before, 16, attention_heads=4, layer=before.config.question_head_layer)
    assert all(torch.equal(v, before.state_dict()[k]) for k, v in again.state_dict().items())
    tuned = StudentModel.from_pretrained(tuned_checkpoint)
    changed = {k.split(".")[0] for k, v in tuned.state_dict().items() if not torch.equal(v, before.state_dict()[k])}
    assert changed == {"encoder", "head", "question_head"}
    assert tuned.config.seen_questions == NEW_QUESTIONS
    card = (tuned_checkpoint / "README.md").read_text()
    assert "with the encoder and the fixed head fine-tuned together with it" in card
    # Its card reproduces the question head it continued from, then this run.
    assert tuned.config.metrics["question_head_continued_from"] == str(any_question_checkpoint)
    head_runs = [line for line in card.split("## Reproduce", 1)[1].splitlines() if "--question-head-width" in line]
    assert len(head_runs) == 2 and "--tune-encoder" not in head_runs[0] and "--tune-encoder" in head_runs[1]
    # One header line for the chain of students it started from, though its base started from another.
    reproduce = card.split("## Reproduce", 1)[1]
    assert reproduce.count("# first, the student it started from") == 1
    assert f"# first, the student it started from (--init-from {any_question_checkpoint}):" in reproduce


def test_tuned_loss_is_both_heads_cross_entropy_computed_as_inference_answers(tuned_checkpoint):
    """The training step's logits (the batch's questions embedded with trimmed padding) are the ones inference
    gives, and its loss adds the fixed head's cross-entropy on its own questions to the question head's."""
    from training.module import StudentLightningModule

    model = StudentModel.from_pretrained(tuned_checkpoint)
    questions = [*KEYWORD_QUESTIONS, *NEW_QUESTIONS]
    module = StudentLightningModule(model, questions=questions, tune_encoder=True).eval()  # no dropout
    texts = ["a dog ate bread", "the red car", "my cat is blue"]
    batch = {k: v for k, v in model.tokenize(texts).items() if k != "token_type_ids"}
    targets = torch.rand(3, len(questions), generator=torch.Generator().manual_seed(0))
    targets[0, [1, 5]] = targets[2, [0, 4, 5]] = np.nan  # column 5 is asked of one text only
    targets[:, 3] = np.nan  # a fixed-head question no text in the batch was asked
    loss = module._shared_step({**batch, "targets": targets, "index": torch.arange(3)}, "train")
    with torch.no_grad():
        by_head = model(**batch, rows=model.question_rows(questions, use_fixed_head=False))
        fixed = model(**batch)
    asked = ~torch.isnan(targets)
    on_fixed = asked[:, : len(KEYWORD_QUESTIONS)]
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    fixed_targets = targets[:, : len(KEYWORD_QUESTIONS)]
    expected = bce(by_head[asked], targets[asked]) + bce(fixed[on_fixed], fixed_targets[on_fixed])
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def plain_question_head_logit(model, text: str, question: str) -> torch.Tensor:
    """The reference for one (text, question) pair, with nothing batched or padded: the MLP over [text proj.,
    question proj., product] and, for a head with attention, each head's softmax read of the text's own tokens."""
    head = model.question_head
    batch = model.tokenize([text])
    out = model.encoder(**batch, output_hidden_states=True)
    t = head.text(mean_pool(out.last_hidden_state, batch["attention_mask"])[0])
    q = head.question(model.question_embeddings([question])[0])
    parts = [t, q, t * q]
    if head.attention_heads:
        tokens = out.hidden_states[model.config.question_head_layer][0]  # (L, hidden): one text, no padding
        keys, values, query = head.keys(tokens), head.values(tokens), head.query(q)
        d = len(q) // head.attention_heads
        reads = []
        for h in range(head.attention_heads):
            part = slice(h * d, (h + 1) * d)
            weights = torch.softmax(keys[:, part] @ query[part] / d**0.5, dim=0)
            reads.append(weights @ values[:, part])
        a = torch.cat(reads)
        parts += [a, a * q]
    return head.mlp(torch.cat(parts))[0]


def test_question_head_settings_are_checked(base_checkpoint):
    from training.train import with_question_head

    base = StudentModel.from_pretrained(base_checkpoint)
    with pytest.raises(ValueError, match="must divide into 3 attention heads"):
        with_question_head(base, 16, attention_heads=3)
    with pytest.raises(ValueError, match="needs a question head"):
        type(base.config)(questions=base.questions, backbone_config=base.config.backbone_config,
                          question_head_attention_heads=2)  # fmt: skip
    layers = base.encoder.config.num_hidden_layers
    with pytest.raises(ValueError, match=f"is not a layer of a {layers}-layer encoder"):
        with_question_head(base, 16, attention_heads=4, layer=layers + 1)
    assert with_question_head(base, 16, attention_heads=4, layer=-1).config.question_head_layer == layers


def test_question_head_takes_shared_or_per_text_questions():
    """Each text asked its own questions ((B, R, width), as training on sparse labels may) answers exactly what the
    shared question list ((Q, width)) answers for those pairs; padding is never read."""
    from qaemb_fast.student import QuestionHead

    torch.manual_seed(0)
    head = QuestionHead(12, 8, attention_heads=2).eval()
    pooled, tokens = torch.randn(3, 12), torch.randn(3, 5, 12)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    projected = head.project_questions(torch.randn(6, 12))
    with torch.no_grad():
        shared = head(pooled, projected, tokens, mask)
        asked = torch.tensor([[0, 5], [2, 3], [4, 1]])
        per_text = head(pooled, projected[asked], tokens, mask)
        torch.testing.assert_close(per_text, shared.gather(1, asked))
        garbage = tokens.masked_fill(~mask.bool()[..., None], 1e4)  # what sits in the padding does not matter
        torch.testing.assert_close(head(pooled, projected, garbage, mask), shared)


def test_head_answers_on_cached_features_match_one_text_at_a_time():
    """The benchmarks' batched answers from cached token states (texts of different lengths, padded per batch)
    equal the head applied to each text alone, with no padding."""
    from evaluation.any_question import head_answers
    from qaemb_fast.student import QuestionHead

    torch.manual_seed(0)
    head = QuestionHead(12, 8, attention_heads=2).eval()
    states = [torch.randn(n, 12) for n in (5, 2, 7, 1, 3)]
    pooled, questions = torch.randn(5, 12), torch.randn(4, 12)
    got = head_answers(head, states, pooled, questions, batch_size=2)
    with torch.no_grad():
        projected = head.project_questions(questions)
        want = [
            torch.sigmoid(head(pooled[i : i + 1], projected, s[None], torch.ones(1, len(s), dtype=torch.long)))
            for i, s in enumerate(states)
        ]
    assert got.shape == (5, 4)
    np.testing.assert_allclose(got, torch.cat(want).numpy(), atol=1e-6)


@pytest.mark.parametrize("attention", [True, False], ids=["attention-head", "pooled-head"])
def test_any_question_answers_match_the_plain_computation(any_question_checkpoint, base_checkpoint, attention):
    if attention:
        emb = QAEmbedder.from_pretrained(any_question_checkpoint, precision="fp32")
        assert emb.model.question_head.attention_heads == 4
    else:  # a question head that sees only the pooled text (checkpoints written before attention heads)
        from training.train import with_question_head

        torch.manual_seed(0)
        emb = QAEmbedder(with_question_head(StudentModel.from_pretrained(base_checkpoint), 16).eval(), precision="fp32")
    texts = ["The brown dog ate some bread.", "the man walked to the city", "a red car"]
    questions = [KEYWORD_QUESTIONS[1], "Does the input mention a dinosaur?", NEW_QUESTIONS[0]]
    got = emb.encode(texts, questions=questions)
    model = emb.model
    with torch.no_grad():
        fixed = model.head(model.pooled(**model.tokenize(texts)))[:, 1]
        new = torch.tensor([[plain_question_head_logit(model, t, q) for q in questions[1:]] for t in texts])
    np.testing.assert_allclose(got[:, 0], torch.sigmoid(fixed).numpy(), atol=1e-6)
    np.testing.assert_allclose(got[:, 1:], torch.sigmoid(new).numpy(), atol=1e-6)
    # The fixed-head questions answer exactly as the base student, whatever else is asked with them.
    base = QAEmbedder.from_pretrained(base_checkpoint, precision="fp32")
    np.testing.assert_allclose(emb.encode(texts)[:, :3], base.encode(texts)[:, :3], atol=1e-6)
    # Batch composition and order change nothing.
    np.testing.assert_allclose(emb.encode(texts[::-1], questions=questions[::-1]), got[::-1, ::-1], atol=1e-6)
    assert emb.encode(texts[0], questions=["Is it about space?"]).shape == (1,)
    top = emb.explain(texts[0], top_k=2, questions=questions)
    assert len(top) == 2 and {q for q, _ in top} <= set(questions)


def test_qaemb_takes_any_questions_with_a_question_head(any_question_checkpoint, base_checkpoint):
    qa = QAEmb(
        questions=["Does the input mention a dinosaur?", KEYWORD_QUESTIONS[0]], checkpoint=str(any_question_checkpoint)
    )
    out = qa(["a dog", "bread"], verbose=False)
    assert out.shape == (2, 2) and set(np.unique(out)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="not answered by this student"):
        QAEmb(questions=["Does the input mention a dinosaur?"], checkpoint=str(base_checkpoint))


@pytest.mark.parametrize(
    "questions, match",
    [
        ([""], "non-empty strings"),
        (["   "], "non-empty strings"),
        ([None], "non-empty strings"),
        ([3.5], "non-empty strings"),
        (["Is it red?", "Is it red?"], "duplicates"),
        ([], "selects nothing"),
    ],
)
def test_bad_questions_are_clear_errors(any_question_checkpoint, questions, match):
    emb = QAEmbedder.from_pretrained(any_question_checkpoint)
    with pytest.raises(ValueError, match=match):
        emb.encode(["a text"], questions=questions)


def test_unknown_question_without_a_question_head_suggests_by_meaning(base_checkpoint):
    emb = QAEmbedder.from_pretrained(base_checkpoint)
    with pytest.raises(KeyError, match="closest in meaning"):
        emb.encode(["a text"], questions=["Does the input mention a dinosaur?"])
    similar = emb.similar_questions(KEYWORD_QUESTIONS[2], n=2)
    assert similar[0][0] == KEYWORD_QUESTIONS[2] and similar[0][1] == pytest.approx(1.0, abs=1e-5)


def test_question_head_needs_a_trained_student(tmp_path):
    data = write_keyword_dataset(tmp_path / "data", n_docs=10, per_doc=4)
    with pytest.raises(ValueError, match="--init-from"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "x"), question_head_width=8, **quiet()))
    with pytest.raises(ValueError, match="give --question-head-width too"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "x"), tune_encoder=True, **quiet()))


# ----------------------------------------------------------------------------- multi-device


def test_ddp_on_two_cpu_processes_trains_and_exports(tmp_path, base_checkpoint):
    """`--strategy ddp --devices 2` on CPU (gloo): the multi-device path a user's multi-GPU run takes."""
    data = write_keyword_dataset(tmp_path / "data", n_docs=12, per_doc=4)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "qaemb_cli.main", "train", "--data", str(data), "--out", str(out), "--init-from",
           str(base_checkpoint), "--accelerator", "cpu", "--strategy", "ddp", "--devices", "2", "--max-epochs", "1",
           "--batch-size", "4", "--no-enable-progress-bar"]  # fmt: skip
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = StudentModel.from_pretrained(out)
    training = loaded.config.metrics["training"]
    assert training["devices"] == 2
    assert loaded.config.metrics["test"]["n_texts"] > 0


def test_ddp_tunes_the_encoder_with_the_question_head_on_sparse_data(tmp_path, any_question_checkpoint):
    """The same with --tune-encoder, where a batch may ask no question of the fixed head: still every parameter gets
    a gradient, as DDP requires."""
    dense = write_keyword_dataset(tmp_path / "dense", n_docs=12, per_doc=4)
    sparse = write_sparse_dataset(tmp_path / "sparse", NEW_QUESTIONS, keep=1)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "qaemb_cli.main", "train", "--data", str(dense), "--extra-data", str(sparse),
           "--out", str(out), "--init-from", str(any_question_checkpoint), "--question-head-width", "16",
           "--question-head-layer", "-2", "--tune-encoder", "--accelerator", "cpu", "--strategy", "ddp", "--devices", "2",
           "--max-epochs", "1", "--batch-size", "2", "--no-enable-progress-bar"]  # fmt: skip
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = StudentModel.from_pretrained(out)
    assert loaded.config.metrics["training"]["devices"] == 2 and loaded.answers_any_question


def test_eval_any_question_scores_seen_and_unseen_questions_and_writes_the_card(tmp_path, any_question_checkpoint):
    import shutil

    from evaluation.any_question import AnyQuestionConfig, run_any_question

    ckpt = shutil.copytree(any_question_checkpoint, tmp_path / "ckpt")
    dense = write_keyword_dataset(tmp_path / "dense", n_docs=10, per_doc=4)
    unseen = ["Does the input mention a car?", "Is the text about a city?"]
    held = write_sparse_dataset(tmp_path / "held", unseen, keep=1, seed=3)
    config = AnyQuestionConfig(checkpoint=str(ckpt), trained_labels=str(dense), heldout_labels=str(held),
                               out=str(tmp_path / "out"), update_card=True)  # fmt: skip
    result = run_any_question(config)
    assert result["trained_fixed_head"]["questions"] == len(KEYWORD_QUESTIONS)
    assert result["heldout_question_head"]["pairs"] == 40 and result["heldout_questions"] == unseen
    assert 0 <= result["heldout_question_head"]["mae"] <= 1
    # The fixed head on its own training texts: the first 1,000 of the split's (here all 32 of them).
    assert result["trained_fixed_head_training_texts"]["texts"] == 32
    assert "its own training texts" in (tmp_path / "out" / "results.md").read_text()
    assert "## Any question" in (ckpt / "README.md").read_text() and (tmp_path / "out" / "results.md").exists()
    seen = write_sparse_dataset(tmp_path / "seen", NEW_QUESTIONS, keep=1)
    with pytest.raises(ValueError, match="were trained on"):
        run_any_question(AnyQuestionConfig(checkpoint=str(ckpt), trained_labels=str(dense), heldout_labels=str(seen)))
