"""Labelling survives being killed at any moment, stops cleanly on SIGINT/SIGTERM, and shares a folder safely.

Each job runs in a process of its own (tests/label_job.py) on a tiny teacher folder, so kills and signals are
real: SIGKILL at random moments (while loading, between and inside chunk writes, during the merge), then a resume,
must give 0 lost and 0 duplicated chunks and answers identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tiny_models import save_tiny_causal_lm

from distill.label import PARTS_DIR, read_chunk_file
from distill.labelled_dataset import LabelledDatasetError, load_labelled_dataset
from qaemb_fast.questions import QuestionSet

JOB = Path(__file__).parent / "label_job.py"
CHUNK = 3
WORDS = ["dog", "cat", "rain", "bread", "sea", "ship", "gold", "night", "laugh", "field", "river", "king"]


def corpus_texts(n: int) -> list[str]:
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + f" ({i})." for i in range(n)]
    return texts + texts[:3]  # duplicates: answered once, present twice


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    save_tiny_causal_lm(root / "teacher", "qwen2")
    corpus = root / "corpus.jsonl"
    texts = corpus_texts(36)
    corpus.write_text("".join(json.dumps({"text": t, "doc_id": f"d{i // 4}"}) + "\n" for i, t in enumerate(texts)))
    QuestionSet.default().subset(range(4), name="four").save(root / "q.json")
    # The uninterrupted run every interrupted one must equal, in a process of its own like them.
    reference = root / "reference"
    assert start(root, reference).wait(timeout=120) == 0
    return root, texts, reference


def start(root, out, delay=0.0, log=None) -> subprocess.Popen:
    cmd = [sys.executable, str(JOB), str(out), str(root / "teacher"), str(root / "corpus.jsonl"), str(root / "q.json")]
    cmd += [str(log or root / f"{Path(out).name}.log"), "--delay", str(delay), "--chunk-size", str(CHUNK)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # the same arithmetic in every process
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def n_chunks(out) -> int:
    return len(list((Path(out) / PARTS_DIR).glob("chunk-*.npz")))


def wait_for(predicate, proc, timeout=60.0) -> bool:
    """Poll every millisecond until predicate() holds (True) or the process ended (False)."""
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.001)
    raise TimeoutError


def claim_pid(path):
    try:
        return json.loads(path.read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def asked(log) -> list[dict]:
    return [json.loads(line) for line in Path(log).read_text().splitlines()] if Path(log).exists() else []


def check_consistent(out, texts, reference):
    """What a kill may leave: whole chunk files holding the right texts, and a dataset that is either refused as
    unfinished or complete and right. Never a half chunk, a corrupt provenance or a wrong dataset."""
    unique = list(dict.fromkeys(texts))
    for path in (Path(out) / PARTS_DIR).glob("chunk-*.npz"):
        k = int(path.stem.split("-")[1])
        chunk_texts, answers, _ = read_chunk_file(path)
        assert chunk_texts == unique[k * CHUNK : (k + 1) * CHUNK] and answers.shape == (len(chunk_texts), 4)
    if (Path(out) / "provenance.json").exists():
        json.loads((Path(out) / "provenance.json").read_text())
    try:
        ds, _, _ = load_labelled_dataset(out)
    except LabelledDatasetError as e:
        assert any(m in str(e) for m in ("not finished", "no provenance.json")), e
        return False
    ref, _, _ = load_labelled_dataset(reference)
    assert ds["text"] == ref["text"]
    np.testing.assert_array_equal(np.array(ds["answers"]), np.array(ref["answers"]))
    return True


def test_sigkill_at_random_moments_then_resume_loses_and_duplicates_nothing(setup):
    root, texts, reference = setup
    out, log = root / "killed", root / "killed.log"
    rng = random.Random(1)
    n_unique = len(set(texts))
    num_chunks = -(-n_unique // CHUNK)
    # Where each kill lands: while starting up, after some chunks (+ a random few ms: between or inside the
    # writes), and during the merge (once it has claimed the merge, and once its dataset temp folder exists).
    plan = ["startup", "chunks", "chunks", "merge", "dataset", "chunks"]
    kills = 0
    for moment in plan:
        proc = start(root, out, delay=0.01, log=log)
        if moment == "startup":
            time.sleep(rng.uniform(0.2, 1.5))
        elif moment == "chunks":
            target = min(num_chunks, n_chunks(out) + rng.randint(1, 4))
            wait_for(lambda t=target: n_chunks(out) >= t, proc)
            time.sleep(rng.uniform(0, 0.03))
        elif moment == "merge":  # this process holds the merge claim (an older, killed one's may still be there)
            wait_for(lambda p=proc: claim_pid(out / PARTS_DIR / "merge.claim") == p.pid, proc)
            time.sleep(rng.uniform(0, 0.5))
        else:
            wait_for(lambda p=proc: (out / f"dataset.tmp{p.pid}").exists(), proc)
            time.sleep(rng.uniform(0, 0.015))  # saving, renaming into place, writing provenance.json
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait()  # reap it: a zombie's pid would still look alive to the claims
        if check_consistent(out, texts, reference):
            break  # this run got to finish the merge before the kill
    assert kills >= 4
    final = start(root, out, log=log)
    assert final.wait(timeout=120) == 0, final.stderr.read()
    assert check_consistent(out, texts, reference)
    assert n_chunks(out) == num_chunks
    ds, prov, _ = load_labelled_dataset(out)
    assert ds["text"] == texts and prov["complete"] is True  # every row, in corpus order, none twice
    # A kill loses at most the chunk in progress: every text was asked, and few twice.
    counts = {}
    for line in asked(log):
        counts[line["text"]] = counts.get(line["text"], 0) + 1
    assert set(counts) == set(texts)
    assert sum(counts.values()) - n_unique <= kills * CHUNK
    leftovers = [p.name for p in (out / PARTS_DIR).iterdir() if not p.name.startswith("chunk-")]
    assert set(leftovers) <= {".claims.lock"}, leftovers  # no claims, no temp files
    assert not [p for p in out.iterdir() if p.name not in ("dataset", "parts", "provenance.json")]


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_promptly_keeps_chunks_and_exits_nonzero(setup, sig, status):
    """Sent the moment a chunk file appears (where one Ctrl-C used to be swallowed): the job stops at once,
    non-zero, keeps its chunks, releases its claims, and a resume finishes the job exactly."""
    root, texts, reference = setup
    out, log = root / f"signal{status}", root / f"signal{status}.log"
    proc = start(root, out, delay=0.2, log=log)
    assert wait_for(lambda: n_chunks(out) >= 1, proc)
    proc.send_signal(sig)
    sent = time.time()
    assert proc.wait(timeout=30) == status, proc.stderr.read()
    assert time.time() - sent < 5  # promptly: not after the next text, chunk or the whole job
    kept = n_chunks(out)
    assert 1 <= kept <= 2
    assert not list((out / PARTS_DIR).glob("*.claim"))  # released on the way out
    assert start(root, out, log=log).wait(timeout=120) == 0
    assert check_consistent(out, texts, reference)


def test_two_runs_on_one_folder_share_the_chunks(setup):
    """Started together on one folder, two runs never label the same chunk; the last one to finish merges."""
    root, texts, reference = setup
    out, log = root / "shared", root / "shared.log"
    a, b = start(root, out, delay=0.1, log=log), start(root, out, delay=0.1, log=log)
    assert a.wait(timeout=120) == 0 and b.wait(timeout=120) == 0, (a.stderr.read(), b.stderr.read())
    lines = asked(log)
    asked_texts = [line["text"] for line in lines]
    assert sorted(asked_texts) == sorted(set(texts))  # every text asked exactly once, by one of the two
    assert len({line["pid"] for line in lines}) == 2  # and both did some of the work
    assert check_consistent(out, texts, reference)
