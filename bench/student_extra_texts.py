"""More varied texts for the default student's fixed head, from dense labels the teacher has already written.

    python bench/student_extra_texts.py   # writes bench/labels/student-extra/{reviews-fortunes,wordnet-windows}/texts.jsonl

then `qaemb-fast label --corpus <that file> --reuse <the source folders> --out <folder>/teacher-answers` copies the
teacher's raw answers (no new teacher calls) and stores them calibrated as the default labels are (`shifted`).

Why: on the project's gold set the student misses more yeses than the teacher on every kind of text (reviews, news,
sentences, story windows), and on its own training texts it already matches the teacher's yes-rate, so what it
lacks is ranking on texts unlike its training corpus (issue 13). The teacher has answered all 109 default
questions on ~14,000 texts beyond the default corpus; these are the ones that can be trained on without touching
anything an evaluation scores:
  - food reviews and fortunes: the classification tasks' *train* split only (their test split scores the student);
  - the WordNet-sentence windows of bench/labels/voxels-synthetic, minus every window of the 6-story benchmark that
    scores the student (bench/labels/voxels-synthetic-6-stories), and minus any window that shares a 6-word run
    with a text the student is scored on (the default corpus's val/test documents, pool-eval, the gold set):
    the default corpus holds the same WordNet sentences.
The windows come alphabetically sorted, with their stories lost, so they get one document id: the document split
then puts them all in training (`split_folders_by_document`), and no near-duplicate window can reach val or test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from distill.label import answers_by_text
from distill.labelled_dataset import load_labelled_dataset
from qaemb_fast.texts import read_jsonl
from training.data import split_by_document

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "bench" / "labels"
OUT = LABELS / "student-extra"
NGRAM = 6


def ngrams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def scored_ngrams(ds, split) -> set[tuple[str, ...]]:
    """Every 6-word run of a text the student is scored on: the default corpus's val/test documents (ds and split:
    its labelled dataset and `split_by_document` rows), pool-eval and the gold set."""
    scored = [ds["text"][i] for part in ("val", "test") for i in split[part]]
    scored += [r["text"] for r in read_jsonl(LABELS / "pool-eval" / "texts.jsonl")]
    scored += [r["text"] for r in read_jsonl(ROOT / "evaluation" / "data" / "gold_default_questions.jsonl")]
    return set().union(*(ngrams(t) for t in scored))


def write(name: str, rows: list[dict]) -> None:
    out = OUT / name / "texts.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{out.relative_to(ROOT)}: {len(rows)} texts from {len({r['doc_id'] for r in rows})} documents")


def main():
    rows = []
    for task in ("food", "fortunes"):
        labelled = answers_by_text(LABELS / f"classify-{task}" / "teacher-answers")
        texts = read_jsonl(LABELS / f"classify-{task}" / "texts.jsonl")
        rows += [
            {"text": r["text"], "doc_id": r["doc_id"]}
            for r in texts
            if r["split"] == "train" and r["text"].strip() in labelled
        ]
    write("reviews-fortunes", list({r["text"]: r for r in rows}.values()))

    ds, _, _ = load_labelled_dataset(ROOT / "checkpoints" / "default-labels")
    split = split_by_document(ds["doc_id"], 0.1, 0.1, 0)
    banned = scored_ngrams(ds, split)
    benchmark = set((LABELS / "voxels-synthetic-6-stories" / "windows.txt").read_text(encoding="utf-8").splitlines())
    labelled = answers_by_text(LABELS / "voxels-synthetic" / "teacher-answers")
    windows = (LABELS / "voxels-synthetic" / "windows.txt").read_text(encoding="utf-8").splitlines()
    kept = [w for w in dict.fromkeys(windows) if w.strip() in labelled and w not in benchmark]
    clean = [w for w in kept if not ngrams(w) & banned]
    print(
        f"windows: {len(kept)} labelled outside the 6-story benchmark, {len(kept) - len(clean)} share a run with a scored text"
    )
    write("wordnet-windows", [{"text": w, "doc_id": "voxels-synthetic/windows"} for w in clean])


if __name__ == "__main__":
    main()
