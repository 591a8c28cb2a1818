"""Texts for labelling the question pool (issue 14): a training corpus and an evaluation corpus, disjoint by document.

    python bench/pool_texts.py            # writes bench/labels/pool-train/texts.jsonl and pool-eval/texts.jsonl
                                          # and the later training rounds, bench/labels/pool-train-N/texts.jsonl

Sources (never D3 texts, never the real-fmri test stories):
  - the default corpus (checkpoints/default-labels): its training documents for pool-train, the documents
    `split_by_document(seed 0)` holds out as test for pool-eval (the default student never trained on them);
  - Amazon food reviews and fortunes (bench/labels/classify-*): their train split for pool-train, test for pool-eval;
    reviews longer than 80 words are skipped (the teacher's cost grows with the text);
  - the real-fmri training stories as 20-word windows; EVAL_STORIES are kept for pool-eval only.
Each corpus is shuffled (seed 0) so that any prefix of a labelling job is a mix of all sources.

pool-train-2, pool-train-3 … are more training texts for the same questions, each drawn afterwards (round N with seed
N - 1) from the same training sources minus every text an earlier round has, so the earlier corpora stay exactly as
they were labelled; each is its own labelling folder (`qaemb-fast train --extra-data ...
bench/labels/pool-train-N/teacher-answers`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from distill.labelled_dataset import load_labelled_dataset
from qaemb_fast.texts import read_jsonl
from training.data import split_by_document

ROOT = Path(__file__).resolve().parents[1]
REAL_FMRI = ROOT.parent / "shared" / "data" / "real-fmri"
EVAL_STORIES = ("avatar", "legacy")
TRAIN_COUNTS = {"default": 700, "food": 400, "fortunes": 300, "stories": 600}
EVAL_COUNTS = {"default": 50, "food": 35, "fortunes": 30, "stories": 35}
LATER_ROUNDS = {  # round: counts per source (the fortunes' training split runs out first: 853 texts)
    2: {"default": 700, "food": 400, "fortunes": 250, "stories": 650},
    3: {"default": 600, "food": 400, "fortunes": 200, "stories": 800},
    4: {"default": 600, "food": 500, "fortunes": 100, "stories": 800},
}
WINDOW = 20


def story_windows(story: str, rng, n: int) -> list[dict]:
    words = " ".join(json.loads((REAL_FMRI / "texts" / f"{story}.json").read_text(encoding="utf-8"))).split()
    starts = rng.choice(max(1, len(words) - WINDOW), size=min(n, max(1, len(words) - WINDOW)), replace=False)
    return [{"text": " ".join(words[s : s + WINDOW]), "doc_id": f"real-fmri/{story}"} for s in sorted(starts)]


def main():
    rng = np.random.default_rng(0)
    ds, _, _ = load_labelled_dataset(ROOT / "checkpoints" / "default-labels")
    split = split_by_document(ds["doc_id"], 0.1, 0.1, 0)
    default = {
        part: [{"text": ds["text"][i], "doc_id": ds["doc_id"][i]} for i in split[part]] for part in ("train", "test")
    }
    food = [r for r in read_jsonl(ROOT / "bench/labels/classify-food/texts.jsonl") if len(r["text"].split()) <= 80]
    fortunes = read_jsonl(ROOT / "bench/labels/classify-fortunes/texts.jsonl")
    stories = json.loads((REAL_FMRI / "stories.json").read_text(encoding="utf-8"))
    test_stories = {s for subject in stories.values() for s in subject["test"]}
    train_stories = sorted({s for subject in stories.values() for s in subject["train"]} - test_stories)
    assert set(EVAL_STORIES) <= set(train_stories) and not set(EVAL_STORIES) & test_stories

    def sample(rows, n):
        rows = list(rows)
        return [rows[i] for i in rng.choice(len(rows), size=min(n, len(rows)), replace=False)]

    def pick(rows, part):
        return [{"text": r["text"], "doc_id": r["doc_id"]} for r in rows if r["split"] == part]

    def draw(part, counts, used=frozenset()):
        """A shuffled mix of every source's `part`, `counts` texts each, none of them in `used`."""
        fresh = [r for r in default[part] if r["text"] not in used]
        rows = sample(fresh, counts["default"])
        for source, n in ((food, counts["food"]), (fortunes, counts["fortunes"])):
            rows += sample([r for r in pick(source, part) if r["text"] not in used], n)
        names = [s for s in train_stories if s not in EVAL_STORIES] if part == "train" else list(EVAL_STORIES)
        per_story = -(-counts["stories"] // len(names))
        windows = [w for s in names for w in story_windows(s, rng, per_story) if w["text"] not in used]
        rows += sample(windows, counts["stories"])
        return [rows[i] for i in rng.permutation(len(rows))]

    corpora = {"pool-train": draw("train", TRAIN_COUNTS), "pool-eval": draw("test", EVAL_COUNTS)}
    used = {r["text"] for r in corpora["pool-train"]}
    for round_, counts in LATER_ROUNDS.items():  # each after the last: the earlier corpora are unchanged by it
        rng = np.random.default_rng(round_ - 1)
        rows = draw("train", counts, used=used)
        assert len(rows) == sum(counts.values()) and not {r["text"] for r in rows} & used
        corpora[f"pool-train-{round_}"], used = rows, used | {r["text"] for r in rows}
    eval_docs = {r["doc_id"] for r in corpora["pool-eval"]}
    for name in corpora:
        assert name == "pool-eval" or not {r["doc_id"] for r in corpora[name]} & eval_docs, f"{name} and pool-eval"
    for name, rows in corpora.items():
        out = ROOT / "bench" / "labels" / name / "texts.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{out}: {len(rows)} texts from {len({r['doc_id'] for r in rows})} documents")


if __name__ == "__main__":
    main()
