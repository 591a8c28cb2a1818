"""The labelled-dataset format: the one definition shared by `qaemb-fast label` (writer) and training (reader).

A labelled dataset is a folder::

    DIR/
      provenance.json   # teacher, prompt, questions (+ hash), corpus hash, counts: what produced the answers
      dataset/          # a `datasets.Dataset` written with save_to_disk, one row per input text:
                        #   text: str, doc_id: str, answers: list[float32] of length Q (teacher P(yes))
      parts/            # the labeller's resumable work (chunk files); not needed by readers

Rows keep the corpus order; duplicate texts appear once per occurrence with the same answers. Column
`answers[:, k]` is the answer to `provenance["questions"][k]`.

Sparse datasets: a job run with `--questions-per-text K` asks each text a seeded sample of K questions
(`distill.label.asked_questions`) and stores NaN for the others; its provenance records "questions_per_text" and
"question_sample_seed". A dense dataset is the special case without NaN (and without those fields); readers treat
NaN as "not asked" (training masks it out) and refuse NaN in a dense dataset.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from qaemb_fast.jobs import atomic_write_json, replace_dir
from qaemb_fast.questions import QuestionSet

PROVENANCE_FILE = "provenance.json"
DATASET_DIR = "dataset"
TEXT, DOC_ID, ANSWERS = "text", "doc_id", "answers"


class LabelledDatasetError(ValueError):
    """A labelled-dataset folder that is missing, incomplete or inconsistent."""


def write_labelled_dataset(out_dir, texts, doc_ids, answers, provenance: dict) -> Path:
    """Write rows + provenance so that a kill at any moment leaves a folder that reads as either the old dataset, or
    "not finished" (re-run to finish), or the new one: the dataset goes to a temp folder that then replaces the old
    one by renames, and provenance.json (which readers require to say the merge finished) is replaced last.

    answers: (n, Q) float array; provenance must contain "questions" (list of Q strings).
    """
    from datasets import Dataset, Features, Sequence, Value

    out_dir = Path(out_dir)
    answers = np.asarray(answers, dtype=np.float32)
    qs = QuestionSet(tuple(provenance["questions"]))
    if answers.ndim != 2 or answers.shape != (len(texts), len(qs)) or len(doc_ids) != len(texts):
        raise LabelledDatasetError(
            f"shape mismatch: {len(texts)} texts, {len(doc_ids)} doc ids, answers {answers.shape}, {len(qs)} questions"
        )
    features = Features({TEXT: Value("string"), DOC_ID: Value("string"), ANSWERS: Sequence(Value("float32"))})
    ds = Dataset.from_dict(
        {TEXT: list(texts), DOC_ID: [str(d) for d in doc_ids], ANSWERS: answers.tolist()}, features=features
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"{DATASET_DIR}.tmp{os.getpid()}"  # per process
    if tmp.exists():
        shutil.rmtree(tmp)
    ds.save_to_disk(str(tmp))
    replace_dir(tmp, out_dir / DATASET_DIR)
    # "complete": every text of the corpus is labelled (False for a partial export of an unfinished job).
    provenance = dict(
        provenance, question_set_hash=qs.hash, num_rows=len(texts), complete=not provenance.get("partial", False)
    )
    atomic_write_json(out_dir / PROVENANCE_FILE, provenance)
    return out_dir


def read_provenance(data_dir) -> dict:
    path = Path(data_dir) / PROVENANCE_FILE
    if not path.exists():
        raise LabelledDatasetError(f"{data_dir}: no {PROVENANCE_FILE}; is this a folder written by `qaemb-fast label`?")
    try:
        provenance = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise LabelledDatasetError(
            f"{path} is corrupt ({type(e).__name__}: {e}); it was probably cut by a kill while being written (older "
            "versions wrote it in place). Delete it and re-run the same `qaemb-fast label` command: the chunk files "
            "in parts/ are kept, and each is checked against the corpus when merged."
        ) from e
    if not isinstance(provenance, dict) or "questions" not in provenance:
        raise LabelledDatasetError(f"{path}: not a labelling provenance (no 'questions')")
    return provenance


def load_labelled_dataset(data_dir, questions=None):
    """Load (dataset, provenance, question_set) from a folder written by `qaemb-fast label`.

    questions: optional QuestionSet / list; if given, it must equal the dataset's questions (same order).
    Raises LabelledDatasetError for an unfinished labelling job, an empty dataset or a question mismatch.
    """
    from datasets import load_from_disk

    data_dir = Path(data_dir)
    prov = read_provenance(data_dir)
    if not (data_dir / DATASET_DIR).exists():
        raise LabelledDatasetError(
            f"{data_dir}: labelling has not finished (no {DATASET_DIR}/). Re-run the same `qaemb-fast label` "
            "command to resume it; the dataset is written when every chunk is done."
        )
    qs = QuestionSet(tuple(prov["questions"]), name=prov.get("question_set_name", "custom"))
    if prov.get("question_set_hash", qs.hash) != qs.hash:
        raise LabelledDatasetError(f"{data_dir}: provenance questions do not match their stored hash")
    if questions is not None:
        from qaemb_fast.questions import as_question_set

        want = as_question_set(questions)
        if want.hash != qs.hash:
            missing = [q for q in want.questions if q not in set(qs.questions)]
            raise LabelledDatasetError(
                f"{data_dir}: the dataset answers {len(qs)} questions ({qs.hash[:19]}…) but {len(want)} different "
                f"ones were requested ({want.hash[:19]}…)"
                + (f"; not in the dataset: {missing[:3]}" if missing else "; same questions in another order")
            )
    if "num_rows" not in prov:  # written last by a merge: without it, the merge was interrupted
        raise LabelledDatasetError(
            f"{data_dir}: the dataset was not finished (its merge was interrupted). Re-run the same "
            "`qaemb-fast label` command: it merges the chunk files again."
        )
    if prov.get("num_rows") == 0:
        raise LabelledDatasetError(f"{data_dir}: the labelled dataset is empty")
    ds = load_from_disk(str(data_dir / DATASET_DIR))
    if len(ds) == 0:
        raise LabelledDatasetError(f"{data_dir}: the labelled dataset is empty")
    for col in (TEXT, DOC_ID, ANSWERS):
        if col not in ds.column_names:
            raise LabelledDatasetError(f"{data_dir}: column {col!r} missing (has {ds.column_names})")
    return ds, prov, qs
