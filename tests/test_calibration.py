"""Calibration of the teacher's P(yes) (distill/calibration.py) and its two evaluations: `eval gold`
(evaluation/gold.py) and `eval calibration` (evaluation/calibration.py), on small synthetic labelling folders."""

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from distill.calibration import (
    CONTENT_FREE_INPUTS,
    Calibration,
    CalibrationError,
    content_free_logodds,
    fit_platt,
    fit_shift,
    logit,
    make_calibration,
    sigmoid,
)
from distill.label import write_chunk
from qaemb_fast import QuestionSet

QUESTIONS = list(QuestionSet.default())
Q = len(QUESTIONS)


def calibrations(q=4, seed=0):
    rng = np.random.default_rng(seed)
    qs = [f"Is it {i}?" for i in range(q)]
    z_cf = rng.normal(0, 1.5, q).tolist()
    return [
        Calibration("none", qs),
        Calibration("contextual", qs, content_free_logodds=z_cf),
        Calibration("shifted", qs, content_free_logodds=z_cf, shift=1.7),
        Calibration("platt", qs, platt_a=rng.uniform(0.3, 2, q).tolist(), platt_b=rng.normal(0, 1, q).tolist()),
    ]


# ---------------------------------------------------------------------------------------------------------------- distill.calibration


@pytest.mark.parametrize("c", calibrations(), ids=lambda c: c.kind)
def test_round_trip_through_json(c):
    back = Calibration.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c
    p = np.random.default_rng(1).uniform(0.01, 0.99, (5, 4))
    np.testing.assert_array_equal(back(p), c(p))


@pytest.mark.parametrize("c", calibrations(), ids=lambda c: c.kind)
def test_invert_undoes_apply(c):
    p = np.random.default_rng(2).uniform(0.02, 0.98, (50, 4)).astype(np.float32)
    np.testing.assert_allclose(c.invert(c(p)), p, atol=2e-5)


def test_kinds_transform_as_documented():
    none, contextual, shifted, platt = calibrations()
    p = np.random.default_rng(3).uniform(0.02, 0.98, (6, 4))
    z = logit(p)
    np.testing.assert_allclose(none.logodds(p), z)
    np.testing.assert_allclose(contextual.logodds(p), z - np.array(contextual.content_free_logodds))
    np.testing.assert_allclose(shifted.logodds(p), z - np.array(shifted.content_free_logodds) - 1.7)
    np.testing.assert_allclose(platt.logodds(p), np.array(platt.platt_a) * z + np.array(platt.platt_b))
    np.testing.assert_allclose(shifted(p), sigmoid(shifted.logodds(p)), rtol=1e-6)


@pytest.mark.parametrize("c", calibrations(), ids=lambda c: c.kind)
def test_subset_answers_like_the_columns_of_the_whole(c):
    p = np.random.default_rng(4).uniform(0.02, 0.98, (7, 4))
    sub = c.subset([3, 1])
    assert sub.questions == [c.questions[3], c.questions[1]]
    np.testing.assert_array_equal(sub(p[:, [3, 1]]), c(p)[:, [3, 1]])


@pytest.mark.parametrize("rate", [0.05, 0.15, 0.5])
def test_fit_shift_reproduces_the_yes_rate(rate):
    rng = np.random.default_rng(5)
    y = (rng.random(4000) < rate).astype(int)
    z = rng.normal(0, 1, 4000) + 2.0 * y + 1.5  # biased toward yes
    shift = fit_shift(z, y)
    assert abs(np.mean(z - shift > 0) - y.mean()) < 2 / len(y)
    assert np.mean(z > 0) > y.mean() + 0.3  # the raw rule says yes far too often: the test has something to fix


def test_fit_platt_improves_log_loss_of_biased_answers():
    rng = np.random.default_rng(6)
    n, q = 400, 3
    truth = rng.normal(-1.5, 2, (n, q))  # the true log-odds
    y = (rng.random((n, q)) < sigmoid(truth)).astype(int)
    raw = sigmoid(2.5 * truth + np.array([3.0, -2.0, 1.0]))  # overconfident and biased, differently per question
    a, b = fit_platt(raw, y)
    fitted = Calibration("platt", ["a", "b", "c"], platt_a=list(a), platt_b=list(b))(raw)
    for j in range(q):
        before, after = log_loss(y[:, j], raw[:, j]), log_loss(y[:, j], fitted[:, j])
        best = log_loss(y[:, j], sigmoid(truth[:, j]))
        assert after < before - 0.05 and after < best + 0.03, (j, before, after, best)
    np.testing.assert_allclose(a, 1 / 2.5, atol=0.1)


def test_fit_platt_single_class_question_leans_to_that_class():
    p = np.random.default_rng(7).uniform(0.2, 0.9, (20, 2))
    y = np.zeros((20, 2), int)
    y[:5, 1] = 1
    a, b = fit_platt(p, y)
    fitted = Calibration("platt", ["x", "y"], platt_a=list(a), platt_b=list(b))(p)
    assert a[0] == 1 and (fitted[:, 0] < 0.5).all()


def test_content_free_logodds_is_the_mean_over_the_inputs():
    class FakeTeacher:
        calls = []

        def answer_text(self, text, questions, batch_size=32):
            self.calls.append(text)
            return np.array([0.2, 0.9]) if text == CONTENT_FREE_INPUTS[0] else np.array([0.5, 0.6])

    teacher = FakeTeacher()
    z = content_free_logodds(teacher, ["q1", "q2"])
    assert teacher.calls == list(CONTENT_FREE_INPUTS)
    k = len(CONTENT_FREE_INPUTS)
    np.testing.assert_allclose(z, (logit([0.2, 0.9]) + (k - 1) * logit([0.5, 0.6])) / k)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Calibration("magic", ["q"]), "unknown calibration"),
        (lambda: Calibration("contextual", ["q1", "q2"], content_free_logodds=[0.1]), "one content-free log-odds"),
        (lambda: Calibration("shifted", ["q"]), "one content-free log-odds"),
        (lambda: Calibration("platt", ["q1", "q2"], platt_a=[1.0, 1.0], platt_b=[0.0]), "one slope and one offset"),
        (lambda: Calibration("contextual", ["q"], content_free_logodds=[0.0])(np.full((3, 2), 0.5)), "2 columns"),
        (lambda: fit_shift([0.1, 0.2], [1]), "as many labels"),
        (lambda: fit_shift([], []), "as many labels"),
        (lambda: make_calibration("platt", None, ["q"]), "fitted on labelled pairs"),
    ],
)
def test_bad_inputs_raise(make, message):
    with pytest.raises(CalibrationError, match=message):
        make()


# ---------------------------------------------------------------------------------------------------------------- fixtures


PROVENANCE = {
    "teacher": "fake-teacher",
    "teacher_weights_sha256": "sha256:fake",
    "max_text_tokens": None,
    "prompt": {"template": "{text} {question}", "system": None, "use_chat_template": True, "few_shot": []},
    "dtype": "float32",
    "yes_token_ids": [1],
    "no_token_ids": [2],
}


def write_gold(path, texts, labels, ambiguous=None):
    """A gold file on the default questions: labels (n, Q) 0/1."""
    ambiguous = np.zeros_like(labels, bool) if ambiguous is None else ambiguous
    with open(path, "w") as f:
        for i, text in enumerate(texts):
            yes = [QUESTIONS[j] for j in np.flatnonzero(labels[i])]
            amb = [QUESTIONS[j] for j in np.flatnonzero(ambiguous[i])]
            f.write(json.dumps({"id": f"t{i}", "kind": "sentence", "text": text, "yes": yes, "ambiguous": amb}) + "\n")
    return path


def write_labels(folder, texts, answers, questions=QUESTIONS, chunk=16, **provenance):
    """A labelling folder as `qaemb-fast label` leaves it mid-job: provenance and chunk files."""
    folder.mkdir(parents=True)
    (folder / "provenance.json").write_text(json.dumps(dict(PROVENANCE, questions=list(questions), **provenance)))
    for k in range(0, len(texts), chunk):
        write_chunk(folder, k // chunk, list(texts[k : k + chunk]), np.asarray(answers[k : k + chunk]))
    return folder


# ---------------------------------------------------------------------------------------------------------------- eval gold


def test_eval_gold_scores_the_labelled_texts(tmp_path):
    from evaluation.gold import GoldConfig, run_gold

    rng = np.random.default_rng(8)
    n = 6
    texts = [f"gold text number {i}" for i in range(n)]
    labels = (rng.random((n, Q)) < 0.2).astype(np.int8)
    labels[:, 0] = 0  # a question with a single class: skipped by the per-question ROC-AUC, and counted
    ambiguous = rng.random((n, Q)) < 0.1
    gold = write_gold(tmp_path / "gold.jsonl", texts, labels, ambiguous)
    p = np.clip(0.25 + 0.4 * labels + rng.normal(0, 0.2, (n, Q)), 0.01, 0.99).astype(np.float32)
    write_labels(tmp_path / "labels", texts[:4], p[:4])  # an unfinished job: 4 of 6 texts

    result = run_gold(GoldConfig(teacher_labels=str(tmp_path / "labels"), gold=str(gold), out=str(tmp_path / "o")))
    assert (result.n_texts, result.n_texts_total) == (4, 6)
    s, y, pp, amb = result.scores, labels[:4].ravel(), p[:4].ravel(), ambiguous[:4].ravel()
    assert s["pooled"]["n"] == 4 * Q
    assert s["pooled"]["roc_auc"] == pytest.approx(roc_auc_score(y, pp))
    assert s["pooled"]["accuracy"] == pytest.approx(accuracy_score(y, pp > 0.5))
    assert s["pooled"]["yes_rate"] == pytest.approx(np.mean(pp > 0.5))
    assert s["pooled"]["true_yes_rate"] == pytest.approx(y.mean())
    assert s["pooled_unambiguous"]["n"] == int((~amb).sum())
    assert s["pooled_unambiguous"]["roc_auc"] == pytest.approx(roc_auc_score(y[~amb], pp[~amb]))
    two_class = [j for j in range(Q) if 0 < labels[:4, j].mean() < 1]
    per_q = np.mean([roc_auc_score(labels[:4, j], p[:4, j]) for j in two_class])
    assert s["per_question"]["roc_auc"] == pytest.approx(per_q)
    assert s["per_question"]["n_single_class"] == Q - len(two_class) > 0
    assert s["per_question"]["accuracy"] == pytest.approx(s["pooled"]["accuracy"])  # same pairs per question
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["n_texts"] == 4 and saved["scores"]["pooled"]["roc_auc"] == pytest.approx(s["pooled"]["roc_auc"])
    assert "4 of 6 gold texts" in (tmp_path / "o" / "results.md").read_text()


def test_eval_gold_student_answers_the_questions_it_knows(tmp_path, monkeypatch):
    from evaluation.gold import GoldConfig, run_gold
    from qaemb_fast.embedder import QAEmbedder

    n = 3
    texts = [f"text {i}" for i in range(n)]
    labels = np.zeros((n, Q), np.int8)
    labels[0, :5], labels[1, 2:7] = 1, 1
    gold = write_gold(tmp_path / "gold.jsonl", texts, labels)
    known = QUESTIONS[:10]

    class FakeStudent:
        questions = known

        def encode(self, texts_, questions, batch_size):
            assert texts_ == texts and questions == known
            return labels[:, :10] * 0.9 + 0.05  # right on every known question

    monkeypatch.setattr(QAEmbedder, "from_pretrained", classmethod(lambda cls, path=None: FakeStudent()))
    result = run_gold(GoldConfig(gold=str(gold)))
    assert result.questions == known and "10 of 109 questions" in result.answerer
    assert result.scores["pooled"]["accuracy"] == 1.0 and result.scores["pooled"]["n"] == n * 10


def test_eval_gold_errors(tmp_path):
    from evaluation.gold import GoldConfig, GoldSetError, run_gold

    with pytest.raises(FileNotFoundError, match="--teacher-labels"):
        run_gold(GoldConfig(teacher_labels=str(tmp_path / "missing")))
    write_labels(tmp_path / "other", ["not a gold text"], np.full((1, Q), 0.5))
    with pytest.raises(GoldSetError, match="none of the 60 gold texts is labelled"):
        run_gold(GoldConfig(teacher_labels=str(tmp_path / "other")))


# ---------------------------------------------------------------------------------------------------------------- eval calibration


D3_QUESTION = "Is the text about cats?"


@pytest.fixture()
def world(tmp_path):
    """Gold texts (22, 20 labelled) with per-question biased raw answers, a prompt variant with less bias, and a
    D3 folder of two tasks (one labelled in part, one not at all)."""
    rng = np.random.default_rng(9)
    n = 22
    texts = [f"gold sentence {i}" for i in range(n)]
    y = (rng.random((n, Q)) < 0.15).astype(np.int8)
    bias = rng.normal(2.0, 1.5, Q)  # each question's own over-eagerness: what contextual calibration removes
    z = 2.5 * (2 * y - 1) + bias + rng.normal(0, 1.0, (n, Q))
    z_strict = 2.5 * (2 * y - 1) + 0.3 * bias + rng.normal(0, 1.0, (n, Q))
    gold = write_gold(tmp_path / "gold.jsonl", texts, y)
    write_labels(tmp_path / "gold-labels", texts[:20], sigmoid(z[:20]))
    strict_prompt = dict(PROVENANCE["prompt"], template="Strictly: {text} {question}")
    write_labels(tmp_path / "gold-strict", texts[:20], sigmoid(z_strict[:20]), prompt=strict_prompt)

    d3 = tmp_path / "d3"
    d3.mkdir()
    tasks = [{"task": "a", "question": D3_QUESTION}, {"task": "b", "question": "Is it sad?"}]
    (d3 / "tasks.json").write_text(json.dumps(tasks))
    d3_y = np.array([0, 1] * 15)
    for name in ("a", "b"):
        with open(d3 / f"{name}.jsonl", "w") as f:
            for i, label in enumerate(d3_y):
                f.write(json.dumps({"text": f"{name} text {i}", "label": int(label)}) + "\n")
    d3_bias = 1.2
    d3_p = sigmoid(1.5 * (2 * d3_y - 1) + d3_bias + rng.normal(0, 1, 30))
    order = rng.permutation(30)[:20]
    write_labels(
        tmp_path / "d3-labels" / "a" / "teacher-answers",
        [f"a text {i}" for i in order],
        d3_p[order][:, None],
        questions=[D3_QUESTION],
    )
    return dict(
        tmp=tmp_path, gold=gold, y=y, z=z, bias=bias, z_strict=z_strict, d3=d3, d3_y=d3_y, d3_p=d3_p,
        order=order, d3_bias=d3_bias,
    )  # fmt: skip


def write_cache(world, out):
    """The content-free log-odds the fake teacher would give: each question's own bias."""
    from evaluation.calibration import CACHE_FILE, setup_key

    cf = {QUESTIONS[j]: float(world["bias"][j]) for j in range(Q)} | {D3_QUESTION: world["d3_bias"]}
    strict = dict(PROVENANCE, prompt=dict(PROVENANCE["prompt"], template="Strictly: {text} {question}"))
    cf_strict = {QUESTIONS[j]: float(0.3 * world["bias"][j]) for j in range(Q)}
    out.mkdir(parents=True, exist_ok=True)
    cache = {setup_key(PROVENANCE): {"logodds": cf}, setup_key(strict): {"logodds": cf_strict}}
    (out / CACHE_FILE).write_text(json.dumps(cache))


def calibration_config(world, **kw):
    from evaluation.calibration import CalibrationEvalConfig

    t = world["tmp"]
    base = dict(
        gold_labels=str(t / "gold-labels"), gold=str(world["gold"]), d3_data=str(world["d3"]),
        d3_labels=str(t / "d3-labels"), variant=(f"strict={t / 'gold-strict'}",), out=str(t / "out"),
    )  # fmt: skip
    return CalibrationEvalConfig(**(base | kw))


def no_teacher(*args, **kwargs):
    raise AssertionError("the teacher was asked although the cache has every answer")


def fast_platt(monkeypatch):
    """For tests of other things: skip the 109 x folds logistic fits of fit_platt (the slow part on a busy CPU)."""
    import evaluation.calibration as ec

    monkeypatch.setattr(ec, "fit_platt", lambda p, y: (np.ones(p.shape[1]), np.zeros(p.shape[1])))


def test_eval_calibration_on_the_same_pairs(world, monkeypatch):
    import evaluation.calibration as ec
    from evaluation.d3 import score_answers
    from evaluation.gold import score_gold

    write_cache(world, world["tmp"] / "out")
    monkeypatch.setattr(ec, "prompt_teacher", no_teacher)
    result = ec.run_calibration_eval(calibration_config(world))
    names = [r["name"] for r in result.rows]
    assert names == ["none", "contextual", "shifted", "platt", "strict: none", "strict: shifted"]
    assert (result.n_gold_texts, result.n_gold_texts_total, result.gold_questions) == (20, 22, Q)
    assert result.d3_tasks == [{"task": "a", "n": 20, "n_total": 30}] and result.d3_skipped == ["b"]
    row = {r["name"]: r for r in result.rows}
    y, z = world["y"][:20], world["z"][:20]

    # none is the raw answers, scored exactly as `eval gold` scores them
    raw = score_gold(sigmoid(z).astype(np.float32), y, np.zeros_like(y, bool))
    assert row["none"]["gold"]["pooled"] == raw["pooled"]
    # the shift on all pairs is fit_shift of the contextual log-odds; it reproduces the gold yes-rate
    z_ctx = logit(sigmoid(z).astype(np.float32)) - world["bias"]
    assert result.shifts["current prompt"]["all"] == pytest.approx(fit_shift(z_ctx.ravel(), y.ravel()))
    assert len(result.shifts["current prompt"]["folds"]) == 5
    g = {k: row[k]["gold"]["pooled"] for k in ("none", "contextual", "shifted", "platt")}
    assert g["none"]["yes_rate"] > g["none"]["true_yes_rate"] + 0.2  # biased: there is something to fix
    assert abs(g["shifted"]["yes_rate"] - g["shifted"]["true_yes_rate"]) < 0.05  # out of fold, so not exact
    assert g["contextual"]["roc_auc"] > g["none"]["roc_auc"] + 0.02  # per-question biases removed
    assert g["shifted"]["accuracy"] > g["shifted"]["majority_accuracy"] > g["none"]["accuracy"]
    assert g["platt"]["roc_auc"] > g["none"]["roc_auc"]

    # D3: out of sample, the gold shift applied; platt has nothing to fit on
    assert row["platt"]["d3_na"] == ec.PLATT_ON_D3 and "d3" not in row["platt"]
    assert "no D3 labels" in row["strict: shifted"]["d3_na"]
    order, d3_y, d3_p = world["order"], world["d3_y"], world["d3_p"].astype(np.float32)
    shift = result.shifts["current prompt"]["all"]
    by_hand = sigmoid(logit(d3_p[order]) - world["d3_bias"] - shift)
    task = row["shifted"]["d3"]["tasks"][0]
    expected = score_answers(by_hand, d3_y[order])
    assert {k: task[k] for k in expected} == pytest.approx(expected)
    assert row["none"]["d3"]["tasks"][0]["yes_rate"] == pytest.approx(np.mean(d3_p[order] > 0.5))

    # the variant: its own answers, and a shift fitted on its own gold pairs
    z_s = logit(sigmoid(world["z_strict"][:20]).astype(np.float32)) - 0.3 * world["bias"]
    assert result.shifts["strict"]["all"] == pytest.approx(fit_shift(z_s.ravel(), y.ravel()))
    assert row["strict: none"]["gold"]["pooled"]["roc_auc"] != row["none"]["gold"]["pooled"]["roc_auc"]

    out = world["tmp"] / "out"
    md = (out / "results.md").read_text()
    assert ec.PLATT_ON_D3 in md and f"{shift:.3f}" in md and "20 of 22 texts" in md
    saved = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in saved["rows"]] == names


def test_eval_calibration_fits_out_of_fold(world, monkeypatch):
    """Each gold answer of a fitted calibration comes from a fit that did not see its text."""
    import evaluation.calibration as ec

    seen = []
    real = ec.fit_shift

    def spy(z, labels):
        seen.append(len(z))
        return real(z, labels)

    write_cache(world, world["tmp"] / "out")
    monkeypatch.setattr(ec, "prompt_teacher", no_teacher)
    monkeypatch.setattr(ec, "fit_shift", spy)
    fast_platt(monkeypatch)
    ec.run_calibration_eval(calibration_config(world, variant=(), folds=4))
    # 4 folds of 15 texts for the gold answers, then all 20 texts for the shift applied to D3
    assert seen == [15 * Q] * 4 + [20 * Q]

    rows = np.arange(10)
    folds = [(np.array([0, 1, 2, 3, 4]), np.array([5, 6, 7, 8, 9])), (np.array([5, 6, 7, 8, 9]), np.arange(5))]

    def fit(train):  # a calibration that says which texts it was fitted on
        return Calibration("shifted", ["q"], content_free_logodds=[0.0], shift=float(train.min()))

    p = np.full((10, 1), 0.5)
    got = logit(ec.cross_fitted(p, folds, fit)[0])[:, 0]
    np.testing.assert_allclose(got, np.where(rows < 5, -5.0, 0.0), atol=1e-4)


def test_content_free_answers_are_cached(world, monkeypatch):
    import evaluation.calibration as ec

    asked = []

    class FakeTeacher:
        def __init__(self, prov):
            self.scale = 0.3 if "Strictly" in prov["prompt"]["template"] else 1.0

        def answer_text(self, text, questions, batch_size=32):
            asked.append(len(questions))
            cf = {QUESTIONS[j]: self.scale * world["bias"][j] for j in range(Q)} | {D3_QUESTION: world["d3_bias"]}
            return sigmoid(np.array([cf[q] for q in questions]))

    monkeypatch.setattr(ec, "prompt_teacher", lambda prov, loaded, device=None: FakeTeacher(prov))
    fast_platt(monkeypatch)
    first = ec.run_calibration_eval(calibration_config(world))
    k = len(CONTENT_FREE_INPUTS)
    assert asked == [Q + 1] * k + [Q] * k  # the current prompt (gold + D3 questions), then the variant's gold ones
    assert (world["tmp"] / "out" / ec.CACHE_FILE).exists()

    monkeypatch.setattr(ec, "prompt_teacher", no_teacher)
    again = ec.run_calibration_eval(calibration_config(world))
    assert again.shifts == first.shifts

    write_cache(world, world["tmp"] / "cached")  # the same numbers, written by hand
    monkeypatch.setattr(ec, "prompt_teacher", no_teacher)
    by_hand = ec.run_calibration_eval(calibration_config(world, out=str(world["tmp"] / "cached")))
    assert by_hand.shifts["current prompt"]["all"] == pytest.approx(first.shifts["current prompt"]["all"], abs=1e-5)

    asked.clear()
    monkeypatch.setattr(ec, "prompt_teacher", lambda prov, loaded, device=None: FakeTeacher(prov))
    ec.run_calibration_eval(calibration_config(world, recompute_content_free=True))
    assert len(asked) == 2 * k


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(variant=("strict",)), ValueError, "expected NAME=DIR"),
        (dict(variant=("strict=nowhere",)), FileNotFoundError, "no such folder"),
        (dict(d3_variant=("other=.",)), ValueError, "no --variant of that name"),
        (dict(d3_labels=None), ValueError, "--d3-data needs --d3-labels"),
        (dict(gold_labels="nowhere"), FileNotFoundError, "--gold-labels nowhere"),
        (dict(folds=30), ValueError, "too few for 30 folds"),
    ],
)
def test_eval_calibration_bad_inputs(world, change, error, message):
    from evaluation.calibration import run_calibration_eval

    with pytest.raises(error, match=message):
        run_calibration_eval(calibration_config(world, **change))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: dict(p, prompt=dict(p["prompt"], template="Other: {text} {question}")), "another setup.*prompt"),
        (lambda p: dict(p, questions=["Is it a dog?"]), "not the task's question"),
    ],
)
def test_eval_calibration_refuses_d3_labels_of_another_setup(world, monkeypatch, change, message):
    import evaluation.calibration as ec

    prov_path = world["tmp"] / "d3-labels" / "a" / "teacher-answers" / "provenance.json"
    prov_path.write_text(json.dumps(change(json.loads(prov_path.read_text()))))
    monkeypatch.setattr(ec, "prompt_teacher", no_teacher)
    with pytest.raises(ValueError, match=message):
        ec.run_calibration_eval(calibration_config(world))


def test_cli_user_error_is_one_line(world, capsys):
    from qaemb_cli.main import main

    code = main(["eval", "calibration", "--gold-labels", "nowhere", "--out", str(world["tmp"] / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --gold-labels nowhere")
