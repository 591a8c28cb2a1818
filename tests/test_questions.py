"""Question sets as the trainable part: the QuestionSet format, `questions generate` (parsing, filtering, a tiny
LLM end to end), `questions select` (elastic-net path recovers planted features) and `eval classify` (real data)."""

import json

import numpy as np
import pytest
import torch

from distill.question_generation import (
    CandidateFilter,
    GenerationConfig,
    QuestionGenerationError,
    check_question,
    clean_question,
    generate_questions,
    parse_questions,
)
from evaluation.question_selection import one_hot, select_questions
from qaemb_cli.main import main
from qaemb_fast.questions import QuestionSet, QuestionSetError, as_question_set, normalize_question

DEFAULT = QuestionSet.default()

# ---------------------------------------------------------------------------------------------------------------
# The QuestionSet format


@pytest.mark.parametrize(
    "questions, message",
    [
        ([], "at least one question"),
        (["Does the input mention food?", ""], "#1: empty question"),
        (["Does the input mention food?", "does the input mention  FOOD ?"], "#1: duplicate of #0"),
        (["Does the input mention food"], "not a question"),
        ([" Does the input mention food?"], "whitespace"),
        (["Does the input mention food?", 3], "not a string"),
        ("Does the input mention food?", "not a single string"),
    ],
)
def test_question_set_rejects_bad_entries(questions, message):
    with pytest.raises(QuestionSetError, match=message):
        QuestionSet(questions)


def test_question_set_round_trip_and_hash_mismatch(tmp_path):
    qs = QuestionSet(("Does the input mention food?", "Is the input a question?"), name="mine", version="2.1")
    qs.save(tmp_path / "qs.json")
    back = QuestionSet.load(tmp_path / "qs.json")
    assert back == qs and back.hash == qs.hash and back.hash.startswith("sha256:")
    d = json.loads((tmp_path / "qs.json").read_text())
    d["questions"][0] = "Does the input mention drink?"  # edited after the hash was written
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(QuestionSetError, match="does not match"):
        QuestionSet.load(tmp_path / "bad.json")
    (tmp_path / "plain.txt").write_text("Does the input mention food?\n\nIs the input a question?\n")
    assert QuestionSet.load(tmp_path / "plain.txt").hash == qs.hash  # the hash covers the questions only
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(QuestionSetError, match="not valid JSON"):
        QuestionSet.load(tmp_path / "broken.json")
    assert as_question_set("default") == DEFAULT and len(DEFAULT) == 109


def test_question_set_subset_indices_closest():
    qs = DEFAULT
    q5, q7 = qs[5], qs[7]
    assert qs.indices([q7, 5, -1]) == [7, 5, len(qs) - 1]
    assert qs.indices(q5.upper().replace("?", " ?")) == [5]  # normalised text matches
    sub = qs.subset([q7, 5], name="two")
    assert sub.questions == (q7, q5) and sub.name == "two" and sub.hash != qs.hash
    with pytest.raises(IndexError):
        qs.indices([len(qs)])
    with pytest.raises(KeyError, match="closest known questions") as e:
        qs.indices(["Does the input mention an animall?"])
    assert "Does the input mention an animal?" in str(e.value)
    assert qs.closest("Does the input mention an animals?", n=1) == ["Does the input mention an animal?"]


# ---------------------------------------------------------------------------------------------------------------
# generate: parsing and filtering fixed fake LLM output

FAKE_OUTPUT = """Sure! Here are 10 new questions:

1. Does the input mention a sport?
2) **Does the text describe a journey?**
- "Does the sentence express anger?"
* Is the input written in the first person
3. What is the main topic of the text?
4. Does the input mention money? (e.g. prices, costs)
5. Does the input mention a car? Does the input mention a train?
Q6: Does the passage involve a child
7. Does it rain?
•  'Does the input refer to music or singing?'
8. Does the input mention food or eating?
9. Does the input mention an animal or not?
I hope these help!"""


def test_parse_questions_on_fake_llm_output():
    parsed = parse_questions(FAKE_OUTPUT)
    assert "Does the text describe a journey?" in parsed and "Is the input written in the first person?" in parsed
    assert not any(p.startswith(("Sure", "I hope", "1.", "-", "*", '"', "**")) for p in parsed)
    kept = CandidateFilter(existing=list(DEFAULT.questions))
    kept.add(parsed)
    assert kept.kept == [
        "Does the input mention a sport?",
        "Does the input describe a journey?",
        "Does the input express anger?",
        "Is the input written in the first person?",
        "Does the input mention money?",
        "Does the input mention a car?",
        "Does the input mention a train?",
        "Does the input involve a child?",
        "Does the input refer to music or singing?",
    ]
    reasons = dict(kept.dropped)
    assert reasons["What is the main topic of the text?"] == "not a yes/no question"
    assert "length" in reasons["Does it rain?"]
    assert reasons["Does the input mention food or eating?"].startswith("same text as")  # in the default set
    assert "or not" in reasons["Does the input mention an animal or not?"]
    for q in kept.kept:
        QuestionSet([q])  # every kept question is valid in the one format
    assert clean_question("does the passage mention a dog in the text ?") == "Does the input mention a dog?"


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("Does the input mention food?", None),
        ("Does the input mention food? Or drink?", "single question"),
        ("How does the input end?", "yes/no"),
        ("Is it good?", "length"),
        ("Does the author like cats and dogs?", "about the input"),
        ("Does the input contain <b>markup</b>?", "markup"),
    ],
)
def test_check_question(raw, reason):
    got = check_question(clean_question(raw))
    assert got is None if reason is None else reason in got


def test_near_duplicates_by_embedding():
    """Semantic duplicates (MiniLM cosine > threshold) of the existing set and of each other are dropped."""
    from qaemb_fast.sentence_embedding import SentenceEmbedder

    emb = SentenceEmbedder()
    f = CandidateFilter(["Does the input mention an animal?"], embed=emb.encode, threshold=0.9)
    f.add(["Does the input mention animals?", "Does the input mention a legal contract?"])
    f.add(["Does the input mention legal contracts?", "Does the input mention the weather?"])
    assert f.kept == ["Does the input mention a legal contract?", "Does the input mention the weather?"]
    assert [d[1].split(" (cosine")[0] for d in f.dropped] == [
        "similar to 'Does the input mention an animal?'",
        "similar to 'Does the input mention a legal contract?'",
    ]
    loose = CandidateFilter(["Does the input mention an animal?"], embed=emb.encode, threshold=0.99)
    assert loose.add(["Does the input mention animals?"]) == ["Does the input mention animals?"]


class ScriptedLM(torch.nn.Module):
    """A stand-in for a causal LM whose `generate` appends a scripted answer per call (round)."""

    def __init__(self, tokenizer, answers):
        super().__init__()
        self.tokenizer, self.answers, self.prompts = tokenizer, list(answers), []
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def generate(self, input_ids, attention_mask=None, **kw):
        assert kw["do_sample"] and kw["max_new_tokens"] > 0
        self.prompts.append(self.tokenizer.decode(input_ids[0]))
        answer = self.tokenizer(self.answers[len(self.prompts) - 1], return_tensors="pt")["input_ids"]
        return torch.cat([input_ids, answer], dim=1)


def test_generate_loop_with_scripted_lm():
    from tiny_models import tiny_tokenizer

    tok = tiny_tokenizer()
    answers = [
        "1. Does the input mention a sport?\n2. What is it about?\n3. Does the input mention an animal?",
        "1. Does the text mention a sport?\n2. Does the input mention money?\n3. Does the input mention a car?",
        "1. Does the input mention a tree?",
    ]
    texts = ["I ate bread and cheese.", "The dog ran.", "It rained all day long.", "She laughed."]
    cfg = GenerationConfig(n=3, examples_per_prompt=2, seed=1)
    lm = ScriptedLM(tok, answers)
    result = generate_questions(lm, tok, texts, cfg, existing="default", progress=False)
    # round 1 keeps the sport question (the animal one exists); round 2 adds money and car; n=3 reached: stop.
    assert result.questions == [
        "Does the input mention a sport?",
        "Does the input mention money?",
        "Does the input mention a car?",
    ]
    assert result.rounds == 2 and len(lm.prompts) == 2
    shown = [sum(t in p for t in texts) for p in lm.prompts]
    assert shown == [2, 2] and "<|im_start|>assistant" in lm.prompts[0]  # chat template, 2 example texts each
    fresh = generate_questions(ScriptedLM(tok, answers), tok, texts, cfg, existing=None, progress=False)
    assert fresh.questions[1:] == ["Does the input mention an animal?", "Does the input mention money?"]
    again = ScriptedLM(tok, answers)
    generate_questions(again, tok, texts, cfg, existing="default", progress=False)
    assert again.prompts == lm.prompts  # seeded: the same examples are shown
    with pytest.raises(QuestionGenerationError, match="no valid new question"):
        generate_questions(ScriptedLM(tok, ["Hello!", "What?"]), tok, texts, GenerationConfig(n=2, max_rounds=2),
                           progress=False)  # fmt: skip


def test_generate_end_to_end_tiny_llm(tmp_path, capsys):
    """A real (tiny, random) Qwen2 through the CLI: its output is random tokens, so either every kept question
    is valid, or the command fails with an error that says nothing valid came out."""
    from tiny_models import save_tiny_causal_lm

    model_dir = save_tiny_causal_lm(tmp_path / "tiny")
    (tmp_path / "ex.txt").write_text("I ate bread and cheese.\nThe dog ran across the field.\nShe laughed.\n")
    out = tmp_path / "new.json"
    argv = ["questions", "generate", "--teacher", str(model_dir), "--examples", str(tmp_path / "ex.txt"), "--n", "3"]
    rc = main([*argv, "--max-rounds", "2", "--max-new-tokens", "24", "--out", str(out), "--dtype", "fp32"])
    err = capsys.readouterr().err
    if rc == 0:
        qs = QuestionSet.load(out)
        assert all(check_question(q) is None for q in qs)
        assert not {normalize_question(q) for q in qs} & {normalize_question(q) for q in DEFAULT}
    else:
        assert rc == 2 and "error: " in err and "no valid new question" in err and not out.exists()


# ---------------------------------------------------------------------------------------------------------------
# select


def _planted(n=300, q=40, informative=(3, 11, 25, 31), targets=15, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, q))
    Y = X[:, list(informative)] @ rng.normal(size=(len(informative), targets)) + 0.2 * rng.normal(size=(n, targets))
    return X, Y


def test_select_recovers_planted_features():
    X, Y = _planted()
    r = select_questions(X, Y, k=4)
    assert sorted(r.indices) == [3, 11, 25, 31]
    assert len(r.weight_norms) == 4 and (np.diff(r.weight_norms) <= 0).all() and r.n_nonzero == 4
    assert r.path_n_nonzero[0] == 0 and r.path_n_nonzero[-1] > 4  # the path goes from none to many
    wider = select_questions(X, Y, k=8)
    assert set(wider.indices[:4]) == {3, 11, 25, 31} and len(wider.indices) == 8


def test_select_recovers_class_features():
    rng = np.random.default_rng(1)
    X = rng.random((500, 30))
    labels = np.where(X[:, 7] > 0.5, "a", "b").astype(object)
    labels[X[:, 19] > 0.7] = "c"
    Y, classes = one_hot(labels)
    assert classes == ["a", "b", "c"] and Y.shape == (500, 3) and (Y.sum(1) == 1).all()
    assert sorted(select_questions(X, Y, k=2).indices) == [7, 19]


def test_select_errors():
    X, Y = _planted(n=50, q=10, informative=(1, 2))
    with pytest.raises(ValueError, match="k must be"):
        select_questions(X, Y, k=11)
    with pytest.raises(ValueError, match="rows"):
        select_questions(X, Y[:-1], k=2)
    with pytest.raises(ValueError, match="constant"):
        select_questions(X, np.ones(50), k=2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        one_hot(["a"] * 5)


@pytest.fixture(scope="module")
def tiny_student(tmp_path_factory):
    """A tiny random BERT student with the MiniLM tokenizer answering the first 12 default questions."""
    from transformers import AutoTokenizer, BertConfig

    from qaemb_fast.student import StudentConfig, StudentModel, default_backbone_path

    tokenizer = AutoTokenizer.from_pretrained(str(default_backbone_path()), local_files_only=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    model = StudentModel(
        StudentConfig(questions=list(DEFAULT[:12]), backbone_config=cfg.to_dict()), tokenizer=tokenizer
    )
    torch.nn.init.normal_(model.head.weight, std=1.0)
    path = tmp_path_factory.mktemp("student") / "ckpt"
    model.save_pretrained(path, dtype=torch.float32)
    return path


def test_select_cli_and_student_answers_subset(tmp_path, tiny_student, capsys):
    """Labelled dataset + labels.csv (shuffled rows, aligned by text) -> selected.json -> the student answers it."""
    from distill.labelled_dataset import write_labelled_dataset
    from qaemb_fast import QAEmbedder

    questions = list(DEFAULT[:12])
    rng = np.random.default_rng(0)
    texts = [f"text number {i}" for i in range(240)]
    X = rng.random((240, 12)).astype(np.float32)
    labels = np.where(X[:, 2] + X[:, 9] > 1.0, "pos", "neg")
    write_labelled_dataset(tmp_path / "labels", texts, texts, X, {"questions": questions})
    perm = rng.permutation(240)
    import pandas as pd

    pd.DataFrame({"text": [texts[i] for i in perm], "label": labels[perm]}).to_csv(tmp_path / "y.csv", index=False)
    out = tmp_path / "selected.json"
    rc = main(["questions", "select", "--features", str(tmp_path / "labels"), "--targets", str(tmp_path / "y.csv"),
               "--k", "2", "--out", str(out), "--report", str(tmp_path / "report.json")])  # fmt: skip
    assert rc == 0 and "2 classes" in capsys.readouterr().out
    selected = QuestionSet.load(out)
    assert set(selected.questions) == {questions[2], questions[9]}
    assert json.loads((tmp_path / "report.json").read_text())["indices"] in ([2, 9], [9, 2])

    # the same selection from arrays: X.npy + X.questions.json (what `qaemb-fast embed --output X.npy` writes)
    np.save(tmp_path / "X.npy", X)
    QuestionSet(tuple(questions)).save(tmp_path / "X.questions.json")
    np.save(tmp_path / "y.npy", (labels == "pos").astype(int))
    rc = main(["questions", "select", "--features", str(tmp_path / "X.npy"), "--targets", str(tmp_path / "y.npy"),
               "--k", "2", "--out", str(tmp_path / "s2.json")])  # fmt: skip
    assert rc == 0 and QuestionSet.load(tmp_path / "s2.json").hash == selected.hash

    # the selected columns as their own labelled dataset: what `qaemb-fast train --data` needs for a small student
    from distill.labelled_dataset import load_labelled_dataset

    rc = main(["questions", "subset-labels", "--data", str(tmp_path / "labels"), "--questions", str(out),
               "--out", str(tmp_path / "sub")])  # fmt: skip
    ds, prov, sub_qs = load_labelled_dataset(tmp_path / "sub", questions=selected)
    assert rc == 0 and ds["text"] == texts and prov["subset_of"] == QuestionSet(tuple(questions)).hash
    cols = [questions.index(q) for q in selected.questions]
    np.testing.assert_array_equal(np.asarray(ds["answers"], dtype=np.float32), X[:, cols])

    emb = QAEmbedder.from_pretrained(tiny_student, precision="fp32")
    docs = ["I ate a sandwich.", "A dog barked at the mailman.", "It rained."]
    full, sub = emb.encode(docs), emb.encode(docs, questions=selected.questions)
    assert sub.shape == (3, 2)
    np.testing.assert_allclose(sub, full[:, [questions.index(q) for q in selected.questions]], atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# eval classify on real data


def _task_or_skip(name, **kw):
    from evaluation.classify import TaskDataError, load_task

    try:
        return load_task(name, **kw)
    except TaskDataError as e:  # no apt/network and not installed: nothing real to test on
        pytest.skip(str(e))


def test_tasks_are_real_split_and_seeded(tmp_path):
    from distill.corpus import read_corpus
    from evaluation.classify import FORTUNE_CATEGORIES, export_task_texts

    full = _task_or_skip("food")
    assert (len(full.train_texts), len(full.test_texts)) == (4000, 1000)
    assert 0.6 < full.train_y.mean() < 0.7  # 65 % five-star reviews
    small = _task_or_skip("food", max_texts=100)
    assert (len(small.train_texts), len(small.test_texts)) == (80, 20)
    assert set(small.train_texts) <= set(full.train_texts) and set(small.test_texts) <= set(full.test_texts)
    f1, f2 = _task_or_skip("fortunes", seed=3), _task_or_skip("fortunes", seed=3)
    assert f1.train_texts == f2.train_texts and f1.class_names == list(FORTUNE_CATEGORIES)
    assert not set(f1.train_texts) & set(f1.test_texts)
    assert (np.bincount(f1.test_y) >= 40).all() and len(f1.train_texts) + len(f1.test_texts) > 1000
    assert _task_or_skip("fortunes", seed=4).train_texts != f1.train_texts
    n = export_task_texts(small, tmp_path / "food.jsonl")
    items = read_corpus(tmp_path / "food.jsonl")
    assert n == len(items) == 100 and {it.text for it in items} == set(small.train_texts + small.test_texts)
    assert {it.doc_id.split("/")[1] for it in items[:20]} == {"train", "test"}  # shuffled: a prefix has both
    rows = [json.loads(line) for line in (tmp_path / "food.jsonl").read_text().splitlines()]
    by_text = dict(zip(small.train_texts, small.train_y))
    assert all(r["label"] == small.class_names[by_text[r["text"]]] for r in rows if r["split"] == "train")
    assert export_task_texts(small, tmp_path / "train.jsonl", split="train") == 80


def test_eval_classify_reproducible_on_real_sample(tmp_path):
    from distill.labelled_dataset import write_labelled_dataset
    from evaluation.classify import ClassifyConfig, run_classify, to_markdown
    from qaemb_fast.student import StudentModel

    task = _task_or_skip("food", max_texts=100)
    qs = DEFAULT.subset(range(20), name="first20")
    StudentModel.from_backbone(questions=qs, max_length=64).save_pretrained(tmp_path / "student")
    # "teacher" answers for 90 % of the texts (a partial labelling run): every model uses only those texts.
    texts = task.train_texts + task.test_texts
    covered = texts[: int(0.9 * len(texts))]
    answers = np.random.default_rng(0).random((len(covered), 20)).astype(np.float32)
    write_labelled_dataset(tmp_path / "teacher", covered, covered, answers, {"questions": list(qs), "teacher": "t"})
    config = ClassifyConfig(
        task="food",
        max_texts=100,
        student=str(tmp_path / "student"),
        teacher_labels=str(tmp_path / "teacher"),
        models=("student", "teacher", "tfidf", "majority"),  # bow and minilm: see the fortunes test
    )
    first = run_classify(config, progress=False)
    second = run_classify(config, progress=False)
    assert json.dumps(first) == json.dumps(second)
    assert first["n_train"] + first["n_test"] == len(set(covered)) and "restricted" in first["notes"][0]
    rows = {r["model"]: r for r in first["results"]}
    assert list(rows) == ["student", "teacher", "tfidf", "majority"]
    for r in rows.values():
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["auc"] <= 1.0
        assert r["accuracy_ci95"][0] <= r["accuracy"] <= r["accuracy_ci95"][1] or r["model"] == "majority"
    assert rows["majority"]["auc"] == 0.5
    majority = int(np.argmax(first["train_class_counts"]))
    assert rows["majority"]["accuracy"] == pytest.approx(first["test_class_counts"][majority] / first["n_test"])
    top = rows["student"]["top_questions"]
    assert len(top) == 10 and {t["question"] for t in top} <= set(qs.questions)
    assert {t["class"] for t in top} <= {"other", "5 stars"}
    md = to_markdown(first)
    assert "| QA student (student, 20 q)" in md and "Most predictive questions" in md and "restricted" in md

    # only a selected subset of the questions (e.g. from `questions select`), for student and teacher alike
    QuestionSet(tuple(qs[:3])).save(tmp_path / "three.json")
    config.questions = str(tmp_path / "three.json")
    few = {r["model"]: r for r in run_classify(config, progress=False)["results"]}
    assert few["student"]["n_features"] == few["teacher"]["n_features"] == 3
    assert {t["question"] for t in few["teacher"]["top_questions"]} == set(qs[:3])

    # no teacher labels: the row is skipped and the report says why
    no_teacher = run_classify(
        ClassifyConfig(task="food", max_texts=100, models=("teacher", "majority")), progress=False
    )
    assert "teacher" in no_teacher["skipped"] and [r["model"] for r in no_teacher["results"]] == ["majority"]


def test_eval_classify_cli_fortunes(tmp_path, capsys):
    _task_or_skip("fortunes")
    out = tmp_path / "fortunes.json"
    rc = main(["eval", "classify", "--task", "fortunes", "--max-texts", "360", "--models", "bow", "minilm",
               "majority", "--out", str(out)])  # fmt: skip
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["classes"][0] == "computers" and len(res["classes"]) == 6 and res["n_test"] == 108
    rows = {r["model"]: r for r in res["results"]}
    assert list(rows) == ["bow", "minilm", "majority"] and rows["majority"]["auc"] == 0.5
    for name in ("bow", "minilm"):  # six topics from words or a sentence embedding: clearly above chance (0.5)
        assert rows[name]["auc"] > 0.6 and rows[name]["accuracy"] > rows["majority"]["accuracy"]
    assert out.with_suffix(".md").read_text().startswith("### `fortunes`")
