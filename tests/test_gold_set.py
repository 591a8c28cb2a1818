"""Checks on the hand-written gold set for the default questions (evaluation/data/gold_default_questions.jsonl)."""

import json
import re

import numpy as np
import pytest

from evaluation.gold import GOLD_PATH, KINDS, GoldSetError, load_gold_records, load_gold_set
from qaemb_fast import QuestionSet


@pytest.fixture(scope="module")
def records():
    return load_gold_records()


def test_every_question_string_is_in_the_default_set(records):
    default = set(QuestionSet.default())
    for r in records:
        for q in r["yes"] + r["ambiguous"]:
            assert q in default, (r["id"], q)


def test_ids_and_texts_unique_and_texts_non_empty(records):
    ids = [r["id"] for r in records]
    texts = [r["text"] for r in records]
    assert len(set(ids)) == len(ids)
    assert len(set(texts)) == len(texts)
    assert all(t.strip() for t in texts)
    assert all(len(set(r["yes"])) == len(r["yes"]) for r in records)


def test_kinds_and_story_windows(records):
    assert {r["kind"] for r in records} <= set(KINDS)
    windows = [r["text"] for r in records if r["kind"] == "story-window"]
    assert windows
    for text in windows:
        assert len(text.split()) == 11, text
        assert re.fullmatch(r"[a-z ]+", text), text  # lower-case, no punctuation, like the fMRI transcripts


def test_loader_matches_the_file(records):
    texts, questions, labels, ambiguous = load_gold_set()
    assert questions == list(QuestionSet.default())
    assert labels.shape == ambiguous.shape == (len(records), len(questions))
    assert labels.dtype == np.int8 and ambiguous.dtype == bool
    assert texts == [r["text"] for r in records]
    assert labels.sum() == sum(len(r["yes"]) for r in records)
    assert ambiguous.sum() == sum(len(r["ambiguous"]) for r in records)
    for i, r in enumerate(records):
        assert [questions[j] for j in np.flatnonzero(labels[i])] == [q for q in questions if q in r["yes"]]


def test_yes_rate_is_sane():
    _, _, labels, _ = load_gold_set()
    # a sanity bound against a broken file (all yes or all no), not a target
    assert 0.03 < labels.mean() < 0.4


def test_unknown_question_is_an_error(tmp_path):
    line = json.loads(GOLD_PATH.read_text(encoding="utf-8").splitlines()[0])
    line["yes"] = ["Does the input mention a unicorn?"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(GoldSetError, match="unicorn"):
        load_gold_set(bad)
