"""The question pool (distill/data/question_pool*.json): size, uniqueness, the defaults in training, a reproducible
split stratified by family, and no D3 question (those must stay unseen for the D3 evaluation)."""

import json
from pathlib import Path

import pytest

from distill.question_pool import (
    FAMILIES,
    POOL_PATH,
    SPLIT_PATH,
    build_pool_split,
    load_question_pool,
    question_pool_families,
    question_pool_split,
)
from qaemb_fast.questions import QuestionSet, normalize_question

D3_TASKS = Path(__file__).resolve().parents[2] / "shared" / "data" / "d3" / "tasks.json"

POOL = load_question_pool()
TRAIN, HELDOUT = question_pool_split()
FAMILY = question_pool_families()


def test_pool_is_large_unique_and_in_the_question_set_format():
    assert len(POOL) >= 1000
    assert len({normalize_question(q) for q in POOL}) == len(POOL)
    assert POOL.name == "question-pool" and POOL.version == "1"
    assert json.loads(POOL_PATH.read_text(encoding="utf-8"))["hash"] == POOL.hash


def test_every_default_question_is_in_the_pool_verbatim_and_in_train():
    default = list(QuestionSet.default())
    assert set(default) <= set(POOL)
    assert set(default) <= set(TRAIN)
    assert not set(default) & set(HELDOUT)


def test_split_is_disjoint_covers_the_pool_and_has_enough_heldout():
    assert len(HELDOUT) >= 150
    assert not set(TRAIN) & set(HELDOUT)
    assert sorted(TRAIN + HELDOUT) == sorted(POOL)


def test_every_question_has_a_known_family_and_every_family_is_held_out():
    assert set(FAMILY) == set(POOL)
    assert set(FAMILY.values()) == set(FAMILIES)
    heldout = set(HELDOUT)
    for family in FAMILIES:
        qs = [q for q in POOL if FAMILY[q] == family]
        assert len(qs) >= 60, family
        assert any(q in heldout for q in qs), family


def test_stored_split_is_exactly_what_the_seed_gives():
    stored = json.loads(SPLIT_PATH.read_text(encoding="utf-8"))
    assert stored["seed"] == 0
    assert build_pool_split(POOL.questions, FAMILY, seed=0) == (TRAIN, HELDOUT)
    # Another seed holds out other questions of the same sizes per family: the seed really drives the split.
    train1, heldout1 = build_pool_split(POOL.questions, FAMILY, seed=1)
    assert len(heldout1) == len(HELDOUT) and set(heldout1) != set(HELDOUT)


def test_build_pool_split_on_a_small_pool():
    default = list(QuestionSet.default())[:2]
    new = [f"Does the input mention thing {i}?" for i in range(10)]
    families = {q: "a" for q in default} | {q: ("a" if i < 5 else "b") for i, q in enumerate(new)}
    train, heldout = build_pool_split(default + new, families, seed=3, heldout_fraction=0.2, always_train=default)
    assert sorted(train + heldout) == sorted(default + new)
    assert set(default) <= set(train)
    assert sum(families[q] == "a" for q in heldout) == 1 and sum(families[q] == "b" for q in heldout) == 1
    assert build_pool_split(default + new, families, seed=3, heldout_fraction=0.2, always_train=default) == (
        train,
        heldout,
    )
    with pytest.raises(ValueError, match="no family"):
        build_pool_split(default + new, {q: "a" for q in default}, always_train=default)
    with pytest.raises(ValueError, match="not in the pool"):
        build_pool_split(new, families, always_train=default)


@pytest.mark.skipif(not D3_TASKS.exists(), reason="D3 tasks not present (../shared/data/d3/tasks.json)")
def test_no_d3_question_is_in_the_pool():
    d3 = {normalize_question(t["question"]) for t in json.loads(D3_TASKS.read_text(encoding="utf-8"))}
    assert len(d3) == 25
    assert not d3 & {normalize_question(q) for q in POOL}
