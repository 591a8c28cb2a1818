"""More texts for the default student's fixed head, to be asked a sample of the 109 default questions each.

    python bench/default_sparse_texts.py   # writes bench/labels/default-sparse/texts.jsonl

then `qaemb-fast label --questions default --corpus bench/labels/default-sparse/texts.jsonl --questions-per-text 24
--out bench/labels/default-sparse/teacher-answers` (the README and the model card give the command).

Why (issue 14): the fixed head fits its ~10,000 densely labelled training texts almost perfectly (Pearson r 0.978
against the teacher) but reaches 0.836 on held-out default-corpus texts, so it lacks examples, not capacity; and the
question pool holds none of the 109 default questions, so the pool labels never reach the fixed head. Asking each
new text 24 of the 109 questions buys about 4.5 times the texts of dense labelling for the same teacher calls.

Which texts: Austen and Moby Dick context windows (the default corpus's own kind, 10 words + the word they end on),
taken with a different phase (seed 1) from the chapters that `split_by_document(seed 0)` puts in the default
corpus's *training* split, so the held-out documents every trained-question figure is scored on stay unseen;
minus the texts already labelled and any window that shares a 6-word run with a text an evaluation scores (the
default corpus's val/test documents, pool-eval, the gold set), as `bench/student_extra_texts.py` does. WordNet
sentences are left out: the synthetic-voxel benchmark is made of them and `student-extra` already holds the rest.
Austen and Moby Dick in the default corpus's proportions (4:3), shuffled (seed 0), so any prefix of the labelling job is a sample of the whole.
"""

from __future__ import annotations

import json

import numpy as np
from student_extra_texts import LABELS, ROOT, ngrams, scored_ngrams  # bench/ is on sys.path: run as a script

from distill.corpus import DEFAULT_MIX, austen_items, moby_dick_items
from distill.labelled_dataset import load_labelled_dataset
from training.data import split_by_document

OUT = LABELS / "default-sparse" / "texts.jsonl"
N_TEXTS = 12_000  # more than one session labels; a prefix is a fair sample, so the job can stop anywhere


def main():
    ds, _, _ = load_labelled_dataset(ROOT / "checkpoints" / "default-labels")
    split = split_by_document(ds["doc_id"], 0.1, 0.1, 0)
    train_docs = {ds["doc_id"][i] for i in split["train"]}
    banned = scored_ngrams(ds, split)
    labelled = set(ds["text"])

    windows = austen_items(seed=1) + moby_dick_items(seed=1)
    in_train = [w for w in windows if w.doc_id in train_docs and w.text not in labelled]
    clean = [w for w in in_train if not ngrams(w.text) & banned]
    print(
        f"{len(windows)} windows, {len(in_train)} new in training chapters, "
        f"{len(in_train) - len(clean)} share a 6-word run with a scored text"
    )
    clean = list(dict((w.text, w) for w in clean).values())
    # Austen and Moby Dick in the default corpus's proportions (4:3), not in their sizes (Austen has 3x the windows).
    rng, rows = np.random.default_rng(0), []
    share = DEFAULT_MIX["austen"] / (DEFAULT_MIX["austen"] + DEFAULT_MIX["mobydick"])
    for source, n in (("austen/", round(N_TEXTS * share)), ("mobydick/", N_TEXTS - round(N_TEXTS * share))):
        pool = [w for w in clean if w.doc_id.startswith(source)]
        rows += [{"text": pool[i].text, "doc_id": pool[i].doc_id} for i in rng.choice(len(pool), n, replace=False)]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {len(rows)} texts from {len({r['doc_id'] for r in rows})} documents")


if __name__ == "__main__":
    main()
