"""The student model: pooling, save/load round trips and strict loading (qaemb_fast/student.py)."""

import json
import socket
import warnings

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, BertConfig

from qaemb_fast.questions import QuestionSet
from qaemb_fast.student import (
    StudentCheckpointError,
    StudentConfig,
    StudentModel,
    bind_questions,
    tensors_sha256,
)

QUESTIONS = list(QuestionSet.default().questions[:6])
TEXTS = ["I ate a sandwich.", "It rained all day long over the grey and quiet city of Leeds.", "A dog barked."]


def tiny_student(tokenizer, pooling="mean", questions=QUESTIONS, seed=0) -> StudentModel:
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    config = StudentConfig(
        questions=questions, backbone_config=cfg.to_dict(), backbone_name="tiny-bert", pooling=pooling
    )
    model = StudentModel(config, tokenizer=tokenizer).eval()
    torch.nn.init.normal_(model.head.weight, std=1.0)  # spread the answers (an untrained head answers ~0.5)
    return model


def logits(model, texts):
    with torch.inference_mode():
        return model(**model.tokenize(texts))


@pytest.fixture
def saved(tokenizer, tmp_path):
    model = tiny_student(tokenizer)
    model.save_pretrained(tmp_path / "ckpt")
    return model, tmp_path / "ckpt"


def edit_config(path, fn):
    cfg = json.loads((path / "config.json").read_text())
    fn(cfg)
    (path / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("pooling", ["mean", "max", "cls"])
def test_padding_does_not_change_answers(tokenizer, pooling):
    model = tiny_student(tokenizer, pooling=pooling)
    batched = logits(model, TEXTS)
    assert batched.shape == (len(TEXTS), len(QUESTIONS))
    for i, text in enumerate(TEXTS):
        torch.testing.assert_close(logits(model, [text])[0], batched[i], atol=1e-5, rtol=1e-5)
    # different texts get different answers (the model is not constant)
    assert (batched[0] - batched[1]).abs().max() > 1e-3


def test_mean_pooling_matches_manual(tokenizer):
    model = tiny_student(tokenizer)
    batch = model.tokenize(TEXTS)
    with torch.inference_mode():
        hidden = model.encoder(**batch).last_hidden_state
        got = model(**batch)
    n = batch["attention_mask"].sum(1)
    manual = torch.stack([hidden[i, : n[i]].mean(0) for i in range(len(TEXTS))])
    torch.testing.assert_close(got, model.head(manual), atol=1e-5, rtol=1e-5)


def test_no_unused_pooler_weights(tokenizer):
    model = tiny_student(tokenizer)
    assert not any(k.startswith("encoder.pooler") for k in model.state_dict())
    assert {k.split(".")[0] for k in model.state_dict()} == {"encoder", "head"}


def test_fp32_round_trip_identical(saved, tmp_path):
    model, _ = saved
    model.save_pretrained(tmp_path / "fp32", dtype=torch.float32)
    loaded = StudentModel.from_pretrained(tmp_path / "fp32")
    assert torch.equal(logits(model, TEXTS), logits(loaded, TEXTS))
    assert loaded.questions == QUESTIONS
    assert loaded.config.question_set_hash == QuestionSet(tuple(QUESTIONS)).hash


def test_bf16_round_trip(saved, tmp_path):
    model, path = saved
    assert all(t.dtype == torch.bfloat16 for t in load_file(str(path / "model.safetensors")).values())
    loaded = StudentModel.from_pretrained(path)
    assert next(loaded.parameters()).dtype == torch.float32  # upcast for compute
    torch.testing.assert_close(logits(loaded, TEXTS), logits(model, TEXTS), atol=0.1, rtol=0.05)
    # bf16 values survive a second save/load exactly
    loaded.save_pretrained(tmp_path / "again")
    assert torch.equal(logits(StudentModel.from_pretrained(tmp_path / "again"), TEXTS), logits(loaded, TEXTS))
    assert StudentModel.from_pretrained(path, dtype=torch.bfloat16).head.weight.dtype == torch.bfloat16


def test_config_is_self_describing(saved):
    model, path = saved
    model.config.metrics = {"test/auc_mean": 0.9}
    model.config.teacher = {"model": "some-teacher"}
    model.save_pretrained(path)
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["questions"] == QUESTIONS and cfg["question_set_hash"].startswith("sha256:")
    assert cfg["backbone_config"]["hidden_size"] == 32 and "_name_or_path" not in cfg["backbone_config"]
    assert cfg["pooling"] == "mean" and cfg["weights"]["dtype"] == "bfloat16"
    loaded = StudentModel.from_pretrained(path)
    assert loaded.config.metrics == {"test/auc_mean": 0.9} and loaded.config.teacher == {"model": "some-teacher"}
    assert (path / "tokenizer_config.json").exists()


def test_loading_never_touches_the_network(saved, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access while loading a local checkpoint")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    StudentModel.from_pretrained(saved[1])


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_weights(saved, keep):
    _, path = saved
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(StudentCheckpointError, match=r"model.safetensors: corrupt or truncated safetensors"):
        StudentModel.from_pretrained(path)
    edit_config(path, lambda c: c.pop("weights"))  # without the stored checksum too
    with pytest.raises(StudentCheckpointError, match="corrupt or truncated safetensors"):
        StudentModel.from_pretrained(path)


def test_corrupt_weights_byte_flip(saved):
    _, path = saved
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-100] ^= 0xFF  # inside the tensor data: only the checksum can tell
    (path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(StudentCheckpointError, match="sha256"):
        StudentModel.from_pretrained(path)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer_config.json", "tokenizer.json"])
def test_missing_file(saved, name):
    _, path = saved
    (path / name).unlink()
    with pytest.raises(StudentCheckpointError, match=f"missing.*{name}"):
        StudentModel.from_pretrained(path)


def test_missing_folder(tmp_path):
    with pytest.raises(StudentCheckpointError, match="not found"):
        StudentModel.from_pretrained(tmp_path / "nope")


def rewrite_weights(path, fn):
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        metadata = f.metadata()
    state = load_file(str(path / "model.safetensors"))
    fn(state)
    save_file(state, str(path / "model.safetensors"), metadata=metadata)
    edit_config(path, lambda c: c.pop("weights"))  # drop the checksum so the key checks are reached


def test_unexpected_key(saved):
    _, path = saved
    rewrite_weights(path, lambda s: s.__setitem__("head.extra", torch.zeros(2)))
    with pytest.raises(StudentCheckpointError, match=r"unexpected weights \(1\): \['head.extra'\]"):
        StudentModel.from_pretrained(path)


def test_missing_key(saved):
    _, path = saved
    rewrite_weights(path, lambda s: s.pop("head.bias"))
    with pytest.raises(StudentCheckpointError, match=r"missing weights \(1\): \['head.bias'\]"):
        StudentModel.from_pretrained(path)


def test_shape_mismatch(saved):
    _, path = saved
    rewrite_weights(path, lambda s: s.__setitem__("head.bias", torch.zeros(len(QUESTIONS) + 1)))
    with pytest.raises(StudentCheckpointError, match="shape mismatches.*head.bias"):
        StudentModel.from_pretrained(path)


def test_questions_hash_mismatch(saved):
    _, path = saved
    edit_config(path, lambda c: c["questions"].__setitem__(0, "Does the input mention a sandwich?"))
    with pytest.raises(StudentCheckpointError, match="does not match"):
        StudentModel.from_pretrained(path)


@pytest.mark.parametrize("edit", ["reorder", "replace"])
def test_questions_edited_with_a_fresh_hash_are_caught_by_the_weights(saved, edit):
    """Even with a config hash recomputed to fit the edited list, the weights' metadata still names the questions
    they were trained on."""
    _, path = saved

    def change(c):
        qs = c["questions"][::-1] if edit == "reorder" else ["Does the input mention a sandwich?", *c["questions"][1:]]
        c["questions"], c["question_set_hash"] = qs, QuestionSet(tuple(qs)).hash

    edit_config(path, change)
    with pytest.raises(StudentCheckpointError, match=f"{path}.*not the ones the weights were trained on"):
        StudentModel.from_pretrained(path)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_or_blank_question_hash(saved, value):
    _, path = saved
    edit_config(path, lambda c: c.pop("question_set_hash") if value is None else c.update(question_set_hash=value))
    with pytest.raises(StudentCheckpointError, match=f"{path}.*question_set_hash' is missing or blank"):
        StudentModel.from_pretrained(path)


def test_weights_without_question_binding_are_refused_then_bound(saved):
    """Checkpoints written before the binding: refused with the way out, which keeps the tensors bit-identical."""
    model, path = saved
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        assert f.metadata()["question_set_hash"] == model.config.question_set_hash
    before = load_file(str(path / "model.safetensors"))
    save_file(before, str(path / "model.safetensors"), metadata={"format": "pt"})  # as older versions wrote it
    with pytest.raises(StudentCheckpointError, match="does not record which questions.*bind_questions"):
        StudentModel.from_pretrained(path)
    bind_questions(path)
    after = load_file(str(path / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) and after[k].dtype == torch.bfloat16 for k in before)
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["weights"]["tensors_sha256"] == tensors_sha256(before) and "sha256" not in cfg["weights"]
    assert torch.equal(
        logits(StudentModel.from_pretrained(path), TEXTS), logits(model.to(torch.bfloat16).float(), TEXTS)
    )


def test_weights_checksum_ignores_the_file_metadata(saved):
    _, path = saved
    state = load_file(str(path / "model.safetensors"))
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        metadata = f.metadata()
    save_file(state, str(path / "model.safetensors"), metadata={**metadata, "note": "added later"})
    StudentModel.from_pretrained(path)  # same tensors: still the weights the config was saved with


def test_tokenizer_from_another_vocabulary_is_refused(saved, tmp_path):
    _, path = saved
    from tiny_models import tiny_tokenizer

    tiny_tokenizer().save_pretrained(str(path))  # a 600-token BPE over a 30522-row embedding table
    with pytest.raises(
        StudentCheckpointError, match=f"{path}: the tokenizer has \\d+ tokens but the backbone embeds 30522"
    ):
        StudentModel.from_pretrained(path)


def test_tokenizer_rebuilt_without_its_vocabulary_is_refused(saved):
    """tokenizer.json removed and the check on it bypassed: the 5-token fallback is still caught by its size."""
    _, path = saved
    (path / "tokenizer.json").unlink()
    with pytest.raises(StudentCheckpointError, match="missing.*tokenizer.json"):
        StudentModel.from_pretrained(path)

    fallback = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    assert len(fallback) < 100  # what loading without the vocabulary would have used
    with pytest.raises(ValueError, match="not the backbone's tokenizer"):
        StudentModel(_config_of(path), tokenizer=fallback)


def _config_of(path):
    raw = json.loads((path / "config.json").read_text())
    return StudentConfig.from_dict({k: v for k, v in raw.items() if k not in ("format", "format_version", "weights")})


def test_truncation_warns_once_with_the_count(saved):
    from qaemb_fast.embedder import QAEmbedder, TruncationWarning

    model, _ = saved
    long_text = " ".join(["word"] * 200)
    emb = QAEmbedder(model, max_length=16)
    with pytest.warns(TruncationWarning, match="2 of 3 texts are longer than the student's limit of 16") as record:
        emb.encode([long_text, "short", long_text + " more"], batch_size=2)
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb.encode(["short", "also short"])  # nothing cut, nothing said
    # The limit is the option: a longer limit reads more of the text and changes its answers.
    wide = QAEmbedder(model, max_length=64)
    with pytest.warns(TruncationWarning, match="1 of 1 texts.*limit of 64"):
        read_more = wide.encode(long_text)
    with pytest.warns(TruncationWarning, match="1 of 1 texts.*limit of 16"):
        assert abs(read_more - emb.encode(long_text)).max() > 0
    exact = " ".join(["word"] * 14)  # 14 tokens + [CLS] + [SEP] = 16: fits exactly, not cut
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb.encode([exact])
    with pytest.raises(ValueError, match="exceeds the backbone's 64 positions"):
        QAEmbedder(model, max_length=65)


def test_not_a_student_config(saved):
    _, path = saved
    edit_config(path, lambda c: c.pop("format"))
    with pytest.raises(StudentCheckpointError, match="not a qaemb-fast student"):
        StudentModel.from_pretrained(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(StudentCheckpointError, match="not valid JSON"):
        StudentModel.from_pretrained(path)


def test_config_validation():
    with pytest.raises(ValueError, match="pooling"):
        StudentConfig(questions=QUESTIONS, backbone_config={"model_type": "bert"}, pooling="sum")
    with pytest.raises(ValueError, match="question"):
        StudentConfig(questions=[], backbone_config={"model_type": "bert"})


def test_real_minilm_backbone(tmp_path):
    """Integration: the packaged all-MiniLM-L6-v2 with the default question set (untrained head)."""
    model = StudentModel.from_backbone()
    assert model.questions == list(QuestionSet.default().questions) and model.config.pooling == "mean"
    assert model.encoder.config.hidden_size == 384 and model.head.out_features == len(model.questions) >= 100
    out = logits(model, TEXTS)
    assert out.shape == (len(TEXTS), len(model.questions)) and torch.isfinite(out).all()
    for i, text in enumerate(TEXTS):
        torch.testing.assert_close(logits(model, [text])[0], out[i], atol=1e-4, rtol=1e-4)
    model.save_pretrained(tmp_path / "m", dtype=torch.float32)
    assert torch.equal(logits(StudentModel.from_pretrained(tmp_path / "m"), TEXTS), out)
