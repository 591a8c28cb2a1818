"""The question pool: ~1,100 reviewed yes/no questions for training and testing a question-conditioned student.

Two files under distill/data/ (package data):

    question_pool.json        the questions, in the one question-set format (QuestionSet, name "question-pool")
    question_pool_split.json  {"seed": 0, "heldout_fraction": 0.2, "pool_hash": ..., "train": [...],
                               "heldout": [...], "families": {question: family}}

The pool holds the 109 default questions verbatim (existing labels use them, so they are always training
questions) plus hand-written questions in eleven families (FAMILIES). The pool was reviewed by hand: one property
per question, no paraphrases of each other or of a default question (checked by normalize_question and by MiniLM
similarity of sorted lists), and none close to the 25 D3 questions, which must stay unseen for the D3 evaluation.

The split is made once, by `build_pool_split(questions, families, seed=0)`: per family, a numpy default_rng
permutation of that family's non-default questions puts a fixed fraction into the held-out set. Stratifying by
family means every kind of question has unseen examples. Held-out questions are never trained on; they measure how
well a student answers questions it has never seen. `python -m distill.question_pool` checks that the stored split
is exactly what the seed gives.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from qaemb_fast.questions import QuestionSet

DATA_DIR = Path(__file__).parent / "data"
POOL_PATH = DATA_DIR / "question_pool.json"
SPLIT_PATH = DATA_DIR / "question_pool_split.json"
SEED = 0
HELDOUT_FRACTION = 0.2
FAMILIES = (
    "concrete",  # objects, animals, food, places, weather, vehicles, tools, clothing, body, plants
    "people",  # family, children, roles, professions, groups
    "actions",  # movement, speech acts, conflict, work, travel, sport, events
    "perception",  # sound, sight, smell, taste, touch, pain, bodily states
    "mind",  # memory, belief, intention, decision, confusion, dreams
    "emotion_stance",  # emotions, opinion, praise, complaint, politeness, certainty
    "abstract_topics",  # politics, religion, law, money, science, technology, education, art, history, time
    "narrative",  # point of view, tense, scene changes, plot events, character description
    "style_syntax",  # questions, negation, numbers, names, lists, figures of speech, punctuation, register words
    "genre_register",  # news, reviews, recipes, instructions, social media, legal, scientific, poetry
    "domain",  # medicine, finance, cooking, computing, military, farming, sea, space, sport, crafts
)


def build_pool_split(questions, families: dict, seed: int = SEED, heldout_fraction: float = HELDOUT_FRACTION,
                     always_train=None) -> tuple[list[str], list[str]]:  # fmt: skip
    """Split `questions` into (train, heldout), both in pool order; deterministic given the seed.

    questions: the pool, in order. families: {question: family} for every question. always_train: questions that
    must be training questions (default: the 109 default questions, which must all be in the pool). Per family
    (in sorted order, one shared rng), round(heldout_fraction * n) of the n non-default questions, at least one,
    are held out.
    """
    questions = list(questions)
    always_train = set(QuestionSet.default() if always_train is None else always_train)
    missing_family = [q for q in questions if q not in families]
    if missing_family:
        raise ValueError(f"{len(missing_family)} questions have no family, e.g. {missing_family[0]!r}")
    missing_default = always_train - set(questions)
    if missing_default:
        raise ValueError(f"{len(missing_default)} always-train questions are not in the pool, "
                         f"e.g. {sorted(missing_default)[0]!r}")  # fmt: skip
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    rng = np.random.default_rng(seed)
    heldout = set()
    for family in sorted({families[q] for q in questions}):
        candidates = [q for q in questions if families[q] == family and q not in always_train]
        if not candidates:
            continue
        n_heldout = max(1, round(heldout_fraction * len(candidates)))
        heldout.update(candidates[i] for i in rng.permutation(len(candidates))[:n_heldout])
    return [q for q in questions if q not in heldout], [q for q in questions if q in heldout]


def load_question_pool() -> QuestionSet:
    """The whole pool (training and held-out questions) as a QuestionSet."""
    return QuestionSet.load(POOL_PATH)


def _load_split() -> dict:
    split = json.loads(SPLIT_PATH.read_text(encoding="utf-8"))
    pool = load_question_pool()
    if split.get("pool_hash") != pool.hash:
        raise ValueError(f"{SPLIT_PATH} was made for another pool ({split.get('pool_hash')} != {pool.hash}); "
                         "re-run save_question_pool")  # fmt: skip
    return split


def question_pool_split() -> tuple[list[str], list[str]]:
    """(train, heldout) question lists of the pool, as stored. Held-out questions must never be trained on."""
    split = _load_split()
    return list(split["train"]), list(split["heldout"])


def question_pool_families() -> dict[str, str]:
    """{question: family} for every pool question."""
    return dict(_load_split()["families"])


def save_question_pool(questions, families: dict, seed: int = SEED, pool_path=POOL_PATH, split_path=SPLIT_PATH):
    """Write the pool and its split (used once to create the files; the split follows from the seed)."""
    pool = QuestionSet(tuple(questions), name="question-pool", version="1")
    unknown = sorted({families[q] for q in pool} - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown families {unknown}; known: {FAMILIES}")
    train, heldout = build_pool_split(pool.questions, families, seed)
    pool.save(pool_path)
    split = {"seed": seed, "heldout_fraction": HELDOUT_FRACTION, "pool_hash": pool.hash, "train": train,
             "heldout": heldout, "families": {q: families[q] for q in pool}}  # fmt: skip
    Path(split_path).write_text(json.dumps(split, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> int:
    """Check the stored split against its seed and print the counts per family."""
    pool, split = load_question_pool(), _load_split()
    train, heldout = build_pool_split(pool.questions, split["families"], split["seed"], split["heldout_fraction"])
    ok = train == split["train"] and heldout == split["heldout"]
    held = set(heldout)
    print(f"{len(pool)} questions: {len(train)} train, {len(heldout)} held out (seed {split['seed']})")
    for family in FAMILIES:
        qs = [q for q in pool if split["families"][q] == family]
        print(f"  {family:<16} {len(qs):4d}  held out {sum(q in held for q in qs):3d}")
    print("stored split matches the seed" if ok else "error: the stored split does not match its seed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
