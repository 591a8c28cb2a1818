"""QAEmbedder.encode / explain, the imodelsX-compatible QAEmb and `qaemb-fast embed` (qaemb_fast/)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig

from qaemb_cli.main import main
from qaemb_fast import QAEmb, QAEmbedder
from qaemb_fast.embedder import DEFAULT_CHECKPOINT_ENV, default_checkpoint_path
from qaemb_fast.questions import QuestionSet
from qaemb_fast.student import StudentCheckpointError, StudentConfig, StudentModel, default_backbone_path

QUESTIONS = list(QuestionSet.default().questions[:8])
TEXTS = [
    "I ate a sandwich.",
    "It rained all day long over the grey and quiet city, and nobody went outside.",
    "A dog barked.",
    "She poured a cup of tea and sat by the window to read the letter again.",
    "Go.",
    "The committee postponed the vote until the budget figures were checked.",
    "Birds sang.",
]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny random student saved in fp32 (so fp32 encode is exactly the saved network)."""
    tokenizer = AutoTokenizer.from_pretrained(str(default_backbone_path()), local_files_only=True)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    model = StudentModel(StudentConfig(questions=QUESTIONS, backbone_config=cfg.to_dict()), tokenizer=tokenizer)
    torch.nn.init.normal_(model.head.weight, std=1.0)  # spread the answers around 0.5
    path = tmp_path_factory.mktemp("student") / "ckpt"
    model.save_pretrained(path, dtype=torch.float32)
    return path


@pytest.fixture(scope="module")
def emb(ckpt):
    return QAEmbedder.from_pretrained(ckpt, precision="fp32")


def test_encode_shape_dtype_range(emb):
    X = emb.encode(TEXTS)
    assert X.shape == (len(TEXTS), len(QUESTIONS)) and X.dtype == np.float32
    assert ((X > 0) & (X < 1)).all() and X.std() > 0.05
    assert emb.questions == QUESTIONS and emb.question_set.hash == QuestionSet(tuple(QUESTIONS)).hash


def test_batched_equals_one_at_a_time_fp32(emb):
    one = np.stack([emb.encode(t) for t in TEXTS])
    for bs in (1, 3, 32):
        np.testing.assert_allclose(emb.encode(TEXTS, batch_size=bs), one, atol=1e-5, rtol=0)


def test_order_restored_after_length_sort(emb):
    X = emb.encode(TEXTS, batch_size=2)
    perm = [4, 1, 6, 0, 3, 5, 2]
    np.testing.assert_allclose(emb.encode([TEXTS[i] for i in perm], batch_size=2), X[perm], atol=1e-5)


def test_bf16_close_to_fp32(ckpt, emb):
    bf16 = QAEmbedder.from_pretrained(ckpt, precision="bf16")
    X16 = bf16.encode(TEXTS, batch_size=3)
    np.testing.assert_allclose(X16, emb.encode(TEXTS), atol=0.03)
    one = np.stack([bf16.encode(t) for t in TEXTS])
    np.testing.assert_allclose(X16, one, atol=0.03)


def test_single_string_is_1d(emb):
    x = emb.encode(TEXTS[0])
    assert x.shape == (len(QUESTIONS),)
    np.testing.assert_allclose(x, emb.encode(TEXTS)[0], atol=1e-5)


def test_subset_by_text_and_index(emb):
    X = emb.encode(TEXTS)
    np.testing.assert_allclose(emb.encode(TEXTS, questions=[3, 0, -1]), X[:, [3, 0, 7]], atol=1e-6)
    np.testing.assert_allclose(emb.encode(TEXTS, questions=[QUESTIONS[5], QUESTIONS[2]]), X[:, [5, 2]], atol=1e-6)
    assert emb.encode(TEXTS[0], questions=QUESTIONS[1]).shape == (1,)


def test_binary_output(emb):
    P, B = emb.encode(TEXTS), emb.encode(TEXTS, output="binary")
    assert B.dtype == np.float32 and set(np.unique(B)) == {0.0, 1.0}
    np.testing.assert_array_equal(B, (P > 0.5).astype(np.float32))


def test_tensor_output(emb):
    t = emb.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(t, torch.Tensor) and t.shape == (len(TEXTS), len(QUESTIONS))


def test_explain(emb):
    top = emb.explain(TEXTS[1], top_k=3)
    p = emb.encode(TEXTS[1])
    assert [q for q, _ in top] == [QUESTIONS[i] for i in np.argsort(-p)[:3]]
    assert [v for _, v in top] == sorted((v for _, v in top), reverse=True)
    assert top[0][1] == pytest.approx(p.max(), abs=1e-6)


@pytest.mark.parametrize(
    "bad, match",
    [
        ([], "empty list"),
        ([""], "empty string"),
        (["ok", "   "], r"positions \[1\]"),
        (["ok", None], "NoneType"),
        (42, "string"),
    ],
)
def test_bad_texts(emb, bad, match):
    with pytest.raises(ValueError, match=match):
        emb.encode(bad)


def test_unknown_question_names_closest(emb):
    with pytest.raises(KeyError, match="closest in meaning.*food or eating"):
        emb.encode(TEXTS, questions=["Does the input mention food?"])
    with pytest.raises(IndexError):
        emb.encode(TEXTS, questions=[99])


def test_bad_arguments(emb):
    with pytest.raises(TypeError):
        emb.encode(TEXTS, normalize_embeddings=True)
    with pytest.raises(ValueError, match="output"):
        emb.encode(TEXTS, output="logits")
    with pytest.raises(ValueError, match="batch_size"):
        emb.encode(TEXTS, batch_size=0)


def test_checkpoint_with_missing_files(ckpt, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(ckpt, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(StudentCheckpointError, match="missing.*model.safetensors"):
        QAEmbedder.from_pretrained(broken)


def test_default_checkpoint_resolution(ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv(DEFAULT_CHECKPOINT_ENV, str(ckpt))
    assert default_checkpoint_path() == ckpt
    assert QAEmbedder.from_pretrained().questions == QUESTIONS
    monkeypatch.setenv(DEFAULT_CHECKPOINT_ENV, str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match=DEFAULT_CHECKPOINT_ENV):
        default_checkpoint_path()


# ------------------------------------------------------------------ imodelsX-compatible QAEmb


def test_qaemb_matches_encode_binary(ckpt, emb):
    questions = [QUESTIONS[4], QUESTIONS[0], QUESTIONS[6]]
    qa = QAEmb(questions, str(ckpt), precision="fp32")
    out = qa(TEXTS, verbose=False)
    assert out.shape == (len(TEXTS), 3) and out.dtype == np.float64  # imodelsX returns float64 0/1
    np.testing.assert_array_equal(out, emb.encode(TEXTS, output="binary", questions=questions))
    np.testing.assert_array_equal(qa(TEXTS + TEXTS[:2], verbose=False, speed_up_with_unique_calls=True)[:-2], out)
    assert qa([], verbose=False).shape == (0, 3)
    qa.questions = [QUESTIONS[1]]  # imodelsX code reassigns .questions
    np.testing.assert_array_equal(qa(TEXTS, verbose=False)[:, 0], emb.encode(TEXTS, output="binary")[:, 1])


def test_qaemb_unknown_questions(ckpt):
    with pytest.raises(ValueError, match="(?s)1 of 2 questions are not answered.*food or eating"):
        QAEmb([QUESTIONS[0], "Does the input mention food?"], str(ckpt))


def test_qaemb_llm_name_falls_back_to_default(ckpt, monkeypatch):
    monkeypatch.setenv(DEFAULT_CHECKPOINT_ENV, str(ckpt))
    with pytest.warns(UserWarning, match="LLM name"):
        qa = QAEmb(QUESTIONS[:2], checkpoint="meta-llama/Meta-Llama-3-8B-Instruct", batch_size=64, CACHE_DIR=None)
    assert qa(TEXTS[:2], verbose=False).shape == (2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(StudentCheckpointError, match="not found"):
            QAEmb(QUESTIONS[:2], checkpoint=str(ckpt.parent / "mistyped"))


# ------------------------------------------------------------------ CLI


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "csv"])
def test_cli_round_trip_npy(ckpt, emb, tmp_path, fmt):
    src = tmp_path / f"in.{fmt}"
    if fmt == "txt":
        src.write_text("\n".join(TEXTS) + "\n")
    elif fmt == "jsonl":
        src.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(TEXTS)))
    else:
        import csv

        with open(src, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "text"])
            w.writerows(enumerate(TEXTS))
    out = tmp_path / "out.npy"
    assert (
        main(["embed", "--checkpoint", str(ckpt), "--input", str(src), "--output", str(out), "--precision", "fp32"])
        == 0
    )
    np.testing.assert_allclose(np.load(out), emb.encode(TEXTS), atol=1e-6)
    assert QuestionSet.load(tmp_path / "out.questions.json").questions == tuple(QUESTIONS)


def test_cli_parquet_subset_binary(ckpt, emb, tmp_path):
    import pyarrow.parquet as pq

    src, out = tmp_path / "in.txt", tmp_path / "out.parquet"
    src.write_text("\n".join(TEXTS))
    argv = ["embed", "--checkpoint", str(ckpt), "--input", str(src), "--output", str(out), "--precision", "fp32"]
    assert main([*argv, "--questions", "2", "0", "--binary"]) == 0
    table = pq.read_table(out).to_pydict()
    assert list(table) == ["text", QUESTIONS[2], QUESTIONS[0]] and table["text"] == TEXTS
    expected = emb.encode(TEXTS, output="binary", questions=[2, 0])
    np.testing.assert_array_equal(np.array([table[QUESTIONS[2]], table[QUESTIONS[0]]]).T, expected)


def test_cli_prints_top_answers(ckpt, emb, capsys):
    assert main(["embed", TEXTS[0], TEXTS[2], "--checkpoint", str(ckpt), "--top-k", "2", "--precision", "fp32"]) == 0
    printed = capsys.readouterr().out
    for text in (TEXTS[0], TEXTS[2]):
        q, p = emb.explain(text, top_k=1)[0]
        assert f"{p:.3f}  {q}" in printed
    assert printed.count("  Does ") == 4


def test_cli_errors(ckpt, capsys):
    assert main(["embed", "--checkpoint", str(ckpt)]) == 2
    assert main(["embed", "hi", "--checkpoint", str(ckpt), "--questions", "Does it mention food?"]) == 2
    assert "closest in meaning" in capsys.readouterr().err
    assert main(["embed", "hi", "--checkpoint", str(ckpt), "--questions", "99"]) == 2
    assert "out of range" in capsys.readouterr().err


# ------------------------------------------------------------------ the shipped default student


SHIPPED_DEFAULT = Path(__file__).resolve().parents[1] / "checkpoints" / "default"


def test_default_checkpoint_is_the_repo_folder(monkeypatch):
    monkeypatch.delenv(DEFAULT_CHECKPOINT_ENV, raising=False)
    if SHIPPED_DEFAULT.is_dir():
        assert default_checkpoint_path() == SHIPPED_DEFAULT
    else:
        with pytest.raises(FileNotFoundError, match="checkpoints/default"):
            default_checkpoint_path()


@pytest.mark.skipif(not SHIPPED_DEFAULT.is_dir(), reason="checkpoints/default not built yet")
def test_default_student_answers_plain_cases(monkeypatch):
    monkeypatch.delenv(DEFAULT_CHECKPOINT_ENV, raising=False)
    emb = QAEmbedder.from_pretrained()
    assert len(emb.questions) >= 100
    food, weather = "Does the input mention food or eating?", "Does the input mention the weather?"
    eat, rain = "We had pasta and salad for dinner.", "It rained heavily all afternoon."
    X = emb.encode([eat, rain], questions=[food, weather])
    assert X[0, 0] > X[1, 0] and X[1, 1] > X[0, 1]


@pytest.mark.skipif(not SHIPPED_DEFAULT.is_dir(), reason="checkpoints/default not built yet")
def test_default_student_answers_questions_it_was_never_trained_on(monkeypatch):
    monkeypatch.delenv(DEFAULT_CHECKPOINT_ENV, raising=False)
    emb = QAEmbedder.from_pretrained()
    assert emb.answers_any_question
    dinosaur, food = "Does the input mention a dinosaur?", "Does the input mention food?"  # food: a paraphrase
    assert not emb.is_trained_question(dinosaur) and not emb.is_trained_question(food)
    texts = ["The T. rex chased a triceratops across the swamp.", "We had pasta and salad for dinner."]
    X = emb.encode(texts, questions=[dinosaur, food, "Does the input mention food or eating?"])
    assert X[0, 0] > X[1, 0] and X[1, 1] > X[0, 1] and X[1, 2] > X[0, 2]
    # The trained questions answer exactly as the fixed head alone does.
    np.testing.assert_allclose(X[:, 2], emb.encode(texts, questions=["Does the input mention food or eating?"])[:, 0])
