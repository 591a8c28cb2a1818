"""The labelling job: resumable, shardable, de-duplicating, refusing to mix setups."""

import json
import subprocess
import sys

import numpy as np
import pytest
from tiny_models import save_tiny_causal_lm, tiny_causal_lm

from distill.corpus import CorpusItem
from distill.label import LabelConfig, chunk_path, merge_labels, run_labelling, summarize_workers
from distill.labelled_dataset import LabelledDatasetError, load_labelled_dataset
from distill.teacher import PromptConfig, Teacher
from qaemb_fast.questions import QuestionSet

QUESTIONS = QuestionSet.default().subset(range(6), name="six")
TEXTS = [
    "I ate bread.",
    "The dog barked at night.",
    "I ate bread.",  # duplicate: answered once, appears twice
    "Rain fell on the sea.",
    "She laughed loudly at the joke.",
    "They sailed to a distant island.",
    "He counted ten gold coins.",
]
ITEMS = [CorpusItem(t, f"doc{i // 2}") for i, t in enumerate(TEXTS)]


class CountingTeacher(Teacher):
    """The real tiny teacher, counting which texts it was asked about."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked = []

    def answer_text(self, text, questions, batch_size=32):
        self.asked.append(text)
        return super().answer_text(text, questions, batch_size)


def make_teacher(prompt="default"):
    model, tok = tiny_causal_lm("qwen2")
    return CountingTeacher(model, tok, questions=QUESTIONS, prompt=PromptConfig(template=prompt), name="tiny-qwen2")


def config(out, **kw):
    return LabelConfig(**{"out": str(out), "questions": QUESTIONS, "chunk_size": 2, "progress": False, **kw})


def answers_of(out):
    ds, prov, qs = load_labelled_dataset(out)
    return ds["text"], ds["doc_id"], np.array(ds["answers"], dtype=np.float32), prov


def test_full_run_answers_duplicates_once_and_matches_encode(tmp_path):
    teacher = make_teacher()
    run_labelling(config(tmp_path / "a"), teacher=teacher, items=ITEMS)
    texts, doc_ids, answers, prov = answers_of(tmp_path / "a")
    assert texts == TEXTS and doc_ids == [it.doc_id for it in ITEMS]
    assert sorted(teacher.asked) == sorted(set(TEXTS))  # the duplicate was answered once
    np.testing.assert_array_equal(answers[0], answers[2])
    np.testing.assert_allclose(answers, teacher.encode(TEXTS), atol=1e-6)
    assert prov["question_set_hash"] == QUESTIONS.hash and prov["teacher"] == "tiny-qwen2"
    assert prov["num_unique_texts"] == 6 and prov["complete"] is True


def test_interrupted_job_resumes_without_redoing_or_duplicating(tmp_path):
    out = tmp_path / "job"
    first = make_teacher()
    run_labelling(config(out, max_chunks=2), teacher=first, items=ITEMS)  # "killed" after two chunks
    assert not (out / "dataset").exists()
    # A kill during a write leaves only a temp file, never a half chunk under the real name.
    (out / "parts" / ".chunk-000002.tmp123.npz").write_bytes(b"half a file")
    second = make_teacher()
    run_labelling(config(out), teacher=second, items=ITEMS)
    assert set(first.asked).isdisjoint(second.asked)
    assert len(first.asked) + len(second.asked) == 6
    _, _, resumed, _ = answers_of(out)
    run_labelling(config(tmp_path / "fresh"), teacher=make_teacher(), items=ITEMS)
    _, _, fresh, _ = answers_of(tmp_path / "fresh")
    np.testing.assert_array_equal(resumed, fresh)


def test_shards_merge_to_the_unsharded_result(tmp_path):
    out = tmp_path / "sharded"
    for i in range(3):
        run_labelling(config(out, num_shards=3, shard_index=i), teacher=make_teacher(), items=ITEMS)
    run_labelling(config(tmp_path / "single"), teacher=make_teacher(), items=ITEMS)
    a, b = answers_of(out), answers_of(tmp_path / "single")
    assert a[0] == b[0] and a[1] == b[1]
    np.testing.assert_array_equal(a[2], b[2])


def test_merged_provenance_says_which_worker_answered_which_chunks(tmp_path):
    out = tmp_path / "mixed"  # 3 chunks: shard 0 of 2 takes chunks 0 and 2, shard 1 takes chunk 1
    run_labelling(config(out, num_shards=2, shard_index=0, batch_size=2), teacher=make_teacher(), items=ITEMS)
    run_labelling(config(out, num_shards=2, shard_index=1, batch_size=3), teacher=make_teacher(), items=ITEMS)
    by = answers_of(out)[3]["labelled_by"]
    assert len(by) == 2 and by[0].startswith("chunks 0, 2: cpu (") and by[0].endswith("batch size 2")
    assert by[1].startswith("chunk 1: cpu (") and by[1].endswith("batch size 3")


def test_summarize_workers_compresses_ranges_and_names_old_chunks():
    workers = {k: "gpu" for k in range(50, 207)} | {k: "" for k in range(50)} | {300: "gpu"}
    assert summarize_workers(workers) == [
        "chunks 0-49: not recorded (chunk written before workers were recorded)",
        "chunks 50-206, 300: gpu",
    ]
    many = summarize_workers({k: "w" for k in range(0, 20, 2)}, max_ranges=3)
    assert many == ["chunks 0, 2, 4, ... (10 chunks): w"]


def test_unfinished_job_is_readable_as_a_text_table(tmp_path):
    from qaemb_fast.classify_eval import _teacher_table

    out = tmp_path / "job"
    run_labelling(config(out, max_chunks=2), teacher=make_teacher(), items=ITEMS)  # 4 of 6 unique texts
    partial, questions, name = _teacher_table(out)  # what `eval classify --teacher-labels` reads
    assert len(partial) == 4 and questions == list(QUESTIONS.questions) and name == "tiny-qwen2"
    run_labelling(config(out), teacher=make_teacher(), items=ITEMS)
    texts, _, answers, _ = answers_of(out)
    complete, _, _ = _teacher_table(out)  # now from the merged dataset
    assert set(complete) == set(TEXTS) and set(partial) < set(complete)
    for text, row in zip(texts, answers):
        np.testing.assert_array_equal(complete[text], row)
        if text in partial:
            np.testing.assert_array_equal(partial[text], row)


def test_refuses_to_mix_setups(tmp_path):
    out = tmp_path / "job"
    run_labelling(config(out, max_chunks=1), teacher=make_teacher(), items=ITEMS)
    with pytest.raises(LabelledDatasetError, match="prompt"):
        run_labelling(config(out), teacher=make_teacher(prompt="paper"), items=ITEMS)
    other_questions = QuestionSet.default().subset(range(1, 7))
    model, tok = tiny_causal_lm("qwen2")
    other = Teacher(model, tok, questions=other_questions, name="tiny-qwen2")
    cfg = config(out)
    cfg.questions = other_questions
    with pytest.raises(LabelledDatasetError, match="question_set_hash"):
        run_labelling(cfg, teacher=other, items=ITEMS)
    with pytest.raises(LabelledDatasetError, match="corpus_hash"):
        run_labelling(config(out), teacher=make_teacher(), items=ITEMS[:-1])


def test_chunk_with_wrong_texts_is_detected(tmp_path):
    out = tmp_path / "job"
    run_labelling(config(out), teacher=make_teacher(), items=ITEMS)
    with np.load(chunk_path(out, 1)) as z:
        answers = z["answers"]
    np.savez(chunk_path(out, 1), texts=np.array(["something else", "entirely"]), answers=answers)
    with pytest.raises(LabelledDatasetError, match="other texts"):
        merge_labels(out, ITEMS)


def test_partial_export_keeps_only_labelled_rows(tmp_path):
    out = tmp_path / "job"
    run_labelling(config(out, max_chunks=1), teacher=make_teacher(), items=ITEMS)
    merge_labels(out, ITEMS, allow_partial=True, into=tmp_path / "partial")
    texts, _, answers, prov = answers_of(tmp_path / "partial")
    assert texts == ["I ate bread.", "The dog barked at night.", "I ate bread."]
    assert prov["partial"] is True and prov["chunks_done"] == 1 and prov["chunks_total"] == 3
    with pytest.raises(LabelledDatasetError, match="not labelled yet"):
        merge_labels(out, ITEMS)


def test_cli_label_and_resume(tmp_path):
    """The real command line on a tiny local teacher folder and a JSONL corpus."""
    save_tiny_causal_lm(tmp_path / "teacher", "llama")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": it.text, "doc_id": it.doc_id}) + "\n" for it in ITEMS))
    qfile = tmp_path / "q.json"
    QUESTIONS.save(qfile)
    cmd = [
        sys.executable,
        "-m",
        "qaemb_fast.cli",
        "label",
        "--teacher",
        str(tmp_path / "teacher"),
        "--corpus",
        str(corpus),
    ]
    cmd += ["--questions", str(qfile), "--out", str(tmp_path / "out"), "--chunk-size", "2", "--dtype", "fp32"]
    subprocess.run(cmd + ["--max-chunks", "1"], check=True, capture_output=True)
    assert len(list((tmp_path / "out" / "parts").glob("chunk-*.npz"))) == 1
    subprocess.run(cmd + ["--no-merge"], check=True, capture_output=True)  # every chunk, but no dataset yet
    assert (
        len(list((tmp_path / "out" / "parts").glob("chunk-*.npz"))) == 3 and not (tmp_path / "out" / "dataset").exists()
    )
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert "pair/s" in done.stderr  # the progress bar reports throughput
    texts, _, answers, _ = answers_of(tmp_path / "out")
    assert texts == TEXTS and answers.shape == (7, 6)
    bad = subprocess.run(
        cmd[:-4] + ["--out", str(tmp_path / "out"), "--chunk-size", "3"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "refusing to mix" in bad.stderr


def test_reuse_copies_answers_of_an_earlier_job_and_asks_only_new_texts(tmp_path):
    first = make_teacher()
    run_labelling(config(tmp_path / "first"), teacher=first, items=ITEMS[:4])
    grown = ITEMS + [CorpusItem("A new text about the weather.", "doc9")]
    second = make_teacher()
    run_labelling(
        config(tmp_path / "grown", chunk_size=3, reuse=(str(tmp_path / "first"),)), teacher=second, items=grown
    )
    assert sorted(second.asked) == sorted({it.text for it in grown} - {it.text for it in ITEMS[:4]})
    by = answers_of(tmp_path / "grown")[3]["labelled_by"]  # chunk 0 holds the 3 old texts, 1-2 the new ones
    assert by[0] == "chunk 0: copied from --reuse" and by[1].startswith("chunks 1-2: cpu (") and len(by) == 2
    run_labelling(config(tmp_path / "fresh", chunk_size=3), teacher=make_teacher(), items=grown)
    np.testing.assert_allclose(answers_of(tmp_path / "grown")[2], answers_of(tmp_path / "fresh")[2], atol=1e-6)
    # Answers from another setup are never copied.
    with pytest.raises(LabelledDatasetError, match="prompt"):
        run_labelling(
            config(tmp_path / "other", reuse=(str(tmp_path / "first"),)), teacher=make_teacher("paper"), items=grown
        )
