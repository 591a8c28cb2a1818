"""The labelling job: resumable, shardable, de-duplicating, refusing to mix setups."""

import json
import os
import subprocess
import sys
import time

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
    """A tiny job. Raw answers (calibration "none") unless a test asks for a calibration: the other tests compare
    answers with `Teacher.encode` and count the texts the teacher is asked about."""
    return LabelConfig(
        **{"out": str(out), "questions": QUESTIONS, "chunk_size": 2, "progress": False, "calibration": "none", **kw}
    )


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
    import shutil

    from distill.label import answers_by_text

    out = tmp_path / "job"
    run_labelling(config(out, max_chunks=2), teacher=make_teacher(), items=ITEMS)  # 4 of 6 unique texts
    partial = answers_by_text(out)  # what `eval classify --teacher-labels` and the voxel benchmarks read
    assert len(partial) == 4 and partial.questions == list(QUESTIONS.questions) and partial.name == "tiny-qwen2"
    run_labelling(config(out), teacher=make_teacher(), items=ITEMS)
    texts, _, answers, _ = answers_of(out)
    complete = answers_by_text(out)
    merged_only = tmp_path / "merged-only"  # a folder without chunk files (--export-partial, subset-labels)
    shutil.copytree(out / "dataset", merged_only / "dataset")
    shutil.copy(out / "provenance.json", merged_only / "provenance.json")
    merged = answers_by_text(merged_only)
    assert set(complete) == set(merged) == set(TEXTS) and set(partial) < set(complete)
    for text, row in zip(texts, answers):
        np.testing.assert_array_equal(complete[text], row)
        np.testing.assert_array_equal(merged[text], row)
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
        "qaemb_cli",
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
    texts, _, answers, provenance = answers_of(tmp_path / "out")
    assert texts == TEXTS and answers.shape == (7, 6)
    from training.train import label_commands  # the model card's command names the questions file the job read

    assert provenance["questions_file"] == str(qfile) and f" --questions {qfile} " in label_commands(provenance, "D")[0]
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
    # The provenance names the folders copied from, and the model card's labelling command repeats them.
    provenance = answers_of(tmp_path / "grown")[3]
    assert provenance["reused_from"] == [str(tmp_path / "first")]
    from training.train import label_commands

    assert "questions_file" not in provenance  # these questions came as a QuestionSet, not from a file
    assert " --questions QUESTIONS.json " in label_commands(provenance, "DATA")[0]

    assert label_commands(provenance, "DATA")[0].endswith(f"--reuse {tmp_path / 'first'} --out DATA")
    run_labelling(config(tmp_path / "fresh", chunk_size=3), teacher=make_teacher(), items=grown)
    assert "reused_from" not in answers_of(tmp_path / "fresh")[3]
    assert " --reuse " not in label_commands(answers_of(tmp_path / "fresh")[3], "DATA")[0]
    np.testing.assert_allclose(answers_of(tmp_path / "grown")[2], answers_of(tmp_path / "fresh")[2], atol=1e-6)
    # Answers from another setup are never copied.
    with pytest.raises(LabelledDatasetError, match="prompt"):
        run_labelling(
            config(tmp_path / "other", reuse=(str(tmp_path / "first"),)), teacher=make_teacher("paper"), items=grown
        )


# ----------------------------------------------------------------------------- strict and kill-safe (issue 11)


def test_corrupt_provenance_is_a_clear_error_and_deleting_it_resumes(tmp_path):
    out = tmp_path / "job"
    run_labelling(config(out, max_chunks=2), teacher=make_teacher(), items=ITEMS)
    text = (out / "provenance.json").read_text()
    (out / "provenance.json").write_text(text[: len(text) // 2])  # what an in-place write cut by a kill left
    with pytest.raises(LabelledDatasetError, match=r"provenance.json is corrupt.*Delete it and re-run"):
        run_labelling(config(out), teacher=make_teacher(), items=ITEMS)
    with pytest.raises(LabelledDatasetError, match="corrupt"):
        load_labelled_dataset(out)
    (out / "provenance.json").unlink()
    resumed = make_teacher()
    run_labelling(config(out), teacher=resumed, items=ITEMS)
    assert len(resumed.asked) == 2  # the two chunks on disk were kept: only the last chunk's texts were asked
    assert answers_of(out)[0] == TEXTS


def test_merge_killed_between_dataset_and_provenance_is_refused_then_finished(tmp_path, monkeypatch):
    """The dataset folder is renamed into place before provenance.json says the merge finished: a kill between the
    two must read as "not finished", and a re-run must finish it."""
    import distill.labelled_dataset as ld

    out = tmp_path / "job"

    def killed(path, obj):
        if path.name == "provenance.json" and "num_rows" in obj:
            raise KeyboardInterrupt("killed")
        return atomic_write_json(path, obj)

    from qaemb_fast.jobs import atomic_write_json

    monkeypatch.setattr(ld, "atomic_write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        run_labelling(config(out), teacher=make_teacher(), items=ITEMS)
    assert (out / "dataset").is_dir()
    with pytest.raises(LabelledDatasetError, match="not finished"):
        load_labelled_dataset(out)
    monkeypatch.undo()
    again = make_teacher()
    run_labelling(config(out), teacher=again, items=ITEMS)
    assert again.asked == [] and answers_of(out)[0] == TEXTS
    assert not [p for p in out.iterdir() if p.name not in ("dataset", "parts", "provenance.json")]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed interrupt itself
def test_interrupt_swallowed_by_a_finalizer_still_stops_the_job(tmp_path):
    """A KeyboardInterrupt raised while Python runs a finalizer (`__del__`, e.g. ZipFile's right after a chunk
    file is written) is discarded by Python. That is how one Ctrl-C was swallowed: the job ran on and exited 0.
    The job must remember the signal and stop after the text in progress, keeping its finished chunks."""
    import signal

    from qaemb_fast.jobs import Interrupted

    class SwallowsInterrupt:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs inside this finalizer: its exception is lost
            for _ in range(100):
                pass

    class CtrlCAfterThreeTexts(CountingTeacher):
        def answer_text(self, text, questions, batch_size=32):
            answers = super().answer_text(text, questions, batch_size)
            if len(self.asked) == 3:
                SwallowsInterrupt()
            return answers

    out = tmp_path / "job"
    teacher = make_teacher()
    teacher.__class__ = CtrlCAfterThreeTexts
    before = signal.getsignal(signal.SIGINT)  # the default handler, or SIG_IGN in a background job (`cmd &`)
    with pytest.raises(Interrupted) as e:
        run_labelling(config(out), teacher=teacher, items=ITEMS)
    assert e.value.exit_code == 130
    assert len(teacher.asked) == 3  # stopped right after the text during which the signal came
    assert [p.name for p in sorted((out / "parts").glob("chunk-*.npz"))] == ["chunk-000000.npz"]
    assert not list((out / "parts").glob("*.claim"))
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
    run_labelling(config(out), teacher=make_teacher(), items=ITEMS)
    assert answers_of(out)[0] == TEXTS


def test_the_same_teacher_by_another_name_is_recognised_by_its_weights(tmp_path):
    out = tmp_path / "job"
    run_labelling(config(out, max_chunks=1), teacher=make_teacher(), items=ITEMS)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["teacher_weights_sha256"].startswith("sha256:")
    model, tok = tiny_causal_lm("qwen2")
    renamed = CountingTeacher(model, tok, questions=QUESTIONS, name="/some/folder/of/the/same/teacher")
    run_labelling(config(out), teacher=renamed, items=ITEMS)  # accepted: same weights
    assert answers_of(out)[3]["teacher"] == "tiny-qwen2"  # the provenance keeps the first name
    other, tok = tiny_causal_lm("qwen2", seed=1)
    impostor = CountingTeacher(other, tok, questions=QUESTIONS, name="tiny-qwen2")
    with pytest.raises(LabelledDatasetError, match=r"teacher: on disk 'tiny-qwen2' \(weights sha256:"):
        run_labelling(config(tmp_path / "job", max_chunks=0), teacher=impostor, items=ITEMS)


def test_old_folder_without_weights_hash_resumes_by_name_or_by_path(tmp_path, monkeypatch):
    """Folders labelled before the weights hash was recorded name the teacher only: the same name, or a path to the
    offline teacher's prepared folder, resumes them, and the hash is recorded from then on."""
    monkeypatch.setenv("QAEMB_FAST_CACHE", str(tmp_path / "cache"))
    folder = save_tiny_causal_lm(tmp_path / "cache" / "teachers" / "smollm2-135m-instruct", "qwen2")
    out = tmp_path / "job"
    by_name = Teacher.from_pretrained(str(folder), questions=QUESTIONS, dtype="fp32", device="cpu")
    by_name.name = "smollm2-135m-instruct"  # as `--teacher smollm2-135m-instruct` records it
    run_labelling(config(out, max_chunks=1), teacher=by_name, items=ITEMS)
    prov = json.loads((out / "provenance.json").read_text())
    del prov["teacher_weights_sha256"], prov["max_text_tokens"]  # as older versions wrote it
    (out / "provenance.json").write_text(json.dumps(prov))
    by_path = Teacher.from_pretrained(str(folder), questions=QUESTIONS, dtype="fp32", device="cpu")
    assert by_path.name == str(folder)
    run_labelling(config(out, max_chunks=1), teacher=by_path, items=ITEMS)
    upgraded = json.loads((out / "provenance.json").read_text())
    assert upgraded["teacher"] == "smollm2-135m-instruct"
    assert upgraded["teacher_weights_sha256"] == by_path.weights_sha256() == by_name.weights_sha256()
    # Another old folder, another teacher name: refused (nothing says they are the same).
    (out / "provenance.json").write_text(json.dumps(dict(prov, teacher="some-other-model")))
    with pytest.raises(LabelledDatasetError, match="teacher"):
        run_labelling(config(out), teacher=by_path, items=ITEMS)


def test_long_texts_warn_once_with_the_count_and_the_limit_is_part_of_the_setup(tmp_path):
    from qaemb_fast.embedder import TruncationWarning

    long_items = ITEMS + [CorpusItem("The dog barked and barked " * 20, "doc9")]
    model, tok = tiny_causal_lm("qwen2")
    limited = CountingTeacher(model, tok, questions=QUESTIONS, name="tiny-qwen2", max_text_tokens=32)
    out = tmp_path / "job"
    with pytest.warns(TruncationWarning, match="1 of 7 texts are longer than the teacher's limit of 32") as record:
        run_labelling(config(out, max_text_tokens=32), teacher=limited, items=long_items)
    assert len(record) == 1
    assert answers_of(out)[3]["max_text_tokens"] == 32
    with pytest.raises(LabelledDatasetError, match="max_text_tokens"):
        run_labelling(config(out), teacher=make_teacher(), items=long_items)


def test_claims_keep_two_runs_apart_and_abandoned_claims_are_taken_over(tmp_path):
    import socket
    import subprocess

    from distill.label import CLAIM_TIMEOUT, ChunkClaims

    parts = tmp_path / "parts"
    mine, other = ChunkClaims(parts), ChunkClaims(parts)
    assert mine.claim("chunk-000001")
    other.pid = os.getppid()  # another live process on this machine
    assert not other.claim("chunk-000001")
    mine.release("chunk-000001")
    assert other.claim("chunk-000001") and not (parts / "chunk-000001.claim").read_text().count(str(os.getpid()))
    # A claim left by a killed process on this machine is taken over.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (parts / "chunk-000002.claim").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    assert mine.claim("chunk-000002")
    # Another machine's claim: respected while its heartbeat is fresh, taken over after CLAIM_TIMEOUT.
    remote = parts / "chunk-000003.claim"
    remote.write_text(json.dumps({"pid": 1, "host": "another-machine"}))
    assert not mine.claim("chunk-000003")
    old = time.time() - CLAIM_TIMEOUT - 1
    os.utime(remote, (old, old))
    assert mine.claim("chunk-000003")
    mine.heartbeat("chunk-000003")
    assert time.time() - remote.stat().st_mtime < 60
    mine.release_all()
    assert sorted(p.name for p in parts.glob("*.claim")) == ["chunk-000001.claim"]  # other's, still held


def test_calibrated_job_keeps_raw_chunks_and_writes_calibrated_answers(tmp_path):
    """Chunk files hold the raw P(yes) (the same as an uncalibrated job's); the dataset and `answers_by_text` hold
    them calibrated with the content-free log-odds the provenance records; raw=True gives them back."""
    from distill.calibration import CONTENT_FREE_INPUTS, Calibration, logit
    from distill.label import answers_by_text

    teacher = make_teacher()
    run_labelling(config(tmp_path / "raw"), teacher=teacher, items=ITEMS)
    run_labelling(config(tmp_path / "cal", calibration="shifted"), teacher=teacher, items=ITEMS)
    texts, _, raw, prov_raw = answers_of(tmp_path / "raw")
    texts_cal, _, cal, prov = answers_of(tmp_path / "cal")
    assert texts == texts_cal and prov_raw["calibration"]["kind"] == "none"
    calibration = Calibration.from_dict(prov["calibration"])
    assert calibration.kind == "shifted" and calibration.shift > 0
    # the recorded content-free log-odds are the teacher's own answers to the content-free inputs
    expected = logit(teacher.encode(list(CONTENT_FREE_INPUTS))).mean(0)
    np.testing.assert_allclose(calibration.content_free_logodds, expected, atol=1e-4)
    np.testing.assert_allclose(cal, calibration(raw), atol=1e-6)
    assert (cal > 0.5).mean() < (raw > 0.5).mean() or (raw > 0.5).mean() == 0  # the shift only removes yeses
    for k in range(3):  # 6 distinct texts, 2 per chunk
        np.testing.assert_array_equal(
            np.load(chunk_path(tmp_path / "raw", k))["answers"], np.load(chunk_path(tmp_path / "cal", k))["answers"]
        )
    table, raw_table = answers_by_text(tmp_path / "cal"), answers_by_text(tmp_path / "cal", raw=True)
    np.testing.assert_allclose(table["Rain fell on the sea."], cal[texts.index("Rain fell on the sea.")], atol=1e-6)
    np.testing.assert_allclose(raw_table["Rain fell on the sea."], raw[texts.index("Rain fell on the sea.")], atol=1e-6)


def test_calibration_is_part_of_the_setup_and_recalibrate_changes_it(tmp_path):
    """A folder of raw answers (or one labelled before calibration existed) refuses a calibrated resume, naming the
    calibration; --recalibrate records the new one and rewrites the dataset from the raw chunks."""
    from distill.calibration import Calibration
    from distill.label import PROVENANCE_FILE

    teacher = make_teacher()
    out = tmp_path / "a"
    run_labelling(config(out), teacher=teacher, items=ITEMS)
    _, _, raw, _ = answers_of(out)
    prov = json.loads((out / PROVENANCE_FILE).read_text())
    prov.pop("calibration")  # as written before calibration existed
    (out / PROVENANCE_FILE).write_text(json.dumps(prov))
    run_labelling(config(out), teacher=teacher, items=ITEMS)  # raw resume of an old folder: fine
    with pytest.raises(LabelledDatasetError, match="calibration"):
        run_labelling(config(out, calibration="contextual"), teacher=teacher, items=ITEMS)
    run_labelling(config(out, calibration="contextual", recalibrate=True), teacher=teacher, items=ITEMS)
    _, _, cal, prov = answers_of(out)
    calibration = Calibration.from_dict(prov["calibration"])
    assert calibration.kind == "contextual"
    np.testing.assert_allclose(cal, calibration(raw), atol=1e-6)
    run_labelling(config(out, calibration="contextual"), teacher=teacher, items=ITEMS)  # now resumes as such
