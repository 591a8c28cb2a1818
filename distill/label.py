"""The labelling job: a teacher answers every question for every corpus text, resumably and in shards.

Layout of the output folder (see distill/labelled_dataset.py for what readers see)::

    OUT/provenance.json          teacher, prompt, dtype, questions + hash, corpus hash, chunk size
    OUT/parts/chunk-000042.npz   answers for unique texts [42*C, 43*C), written atomically (tmp file + rename),
                                 with the texts and the worker (device, batch size) that answered them
    OUT/dataset/                 the final `datasets` dataset, written once every chunk exists

Why it is kill-safe: a chunk file appears only complete (os.replace is atomic), so a killed job loses at most
the chunk it was working on, and a restart skips every chunk already on disk. Each chunk also stores its
texts, which are checked against the corpus on merge, so a chunk can never be attached to the wrong rows.

Why sharding is exact: chunks are defined by the de-duplicated corpus alone; shard i of N takes the chunks
k with k % N == i. Any set of workers (any N, even mixed over time) produces the same chunk files, so the merged
result equals an unsharded run.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distill.labelled_dataset import (
    PROVENANCE_FILE,
    LabelledDatasetError,
    write_labelled_dataset,
)
from qaemb_fast.questions import as_question_set

PARTS_DIR = "parts"
COPIED = "copied from --reuse"  # the worker of answers copied from another folder rather than asked
# Fields that determine the answers: a resumed or parallel job must agree on all of them.
IDENTITY_FIELDS = (
    "teacher",
    "prompt",
    "dtype",
    "yes_token_ids",
    "no_token_ids",
    "question_set_hash",
    "corpus_hash",
    "num_unique_texts",
    "chunk_size",
)
# A folder whose answers are reused (--reuse) must agree on every identity field except these, which describe
# the corpus rather than how each text was answered.
REUSE_MAY_DIFFER = ("corpus_hash", "num_unique_texts", "chunk_size")


@dataclass
class LabelConfig:
    teacher: str = "qwen2.5-coder-1.5b-instruct"  # offline teacher name, hub id, folder or .gguf file
    questions: str = "default"  # question-set file or "default"
    corpus: str = "builtin:default"  # see distill.corpus.load_corpus_spec
    out: str = "labels"
    prompt: str = "default"  # "default", "paper", or a template with {text} and {question}
    system: str | None = None
    few_shot: str = "paper"  # "paper" (the paper's few-shot turns) or "none"
    dtype: str = "auto"
    device: str | None = None
    num_shards: int = 1
    shard_index: int = 0
    chunk_size: int = 16  # unique texts per chunk file: the most work a kill can lose
    batch_size: int = 16  # question suffixes per forward pass (sorted by length; bigger batches pad more)
    max_chunks: int | None = None  # stop after this many new chunks (for time-boxed runs)
    merge: bool = True  # write OUT/dataset when every chunk is done
    reuse: tuple[str, ...] = ()  # other output folders (same teacher setup) whose answers are copied, not re-asked
    progress: bool = True


def unique_texts(texts) -> tuple[list[str], np.ndarray]:
    """De-duplicate in first-occurrence order. Returns (unique, row -> unique index)."""
    index, unique, inverse = {}, [], np.empty(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        if t not in index:
            index[t] = len(unique)
            unique.append(t)
        inverse[i] = index[t]
    return unique, inverse


def chunk_path(out: Path, k: int) -> Path:
    return out / PARTS_DIR / f"chunk-{k:06d}.npz"


def shard_chunks(num_chunks: int, num_shards: int, shard_index: int) -> list[int]:
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"--shard-index must be in [0, {num_shards}), got {shard_index}")
    return [k for k in range(num_chunks) if k % num_shards == shard_index]


def setup_differences(old: dict, new: dict, ignore=()) -> list[str]:
    """The identity fields (see IDENTITY_FIELDS) on which two labelling setups disagree."""
    return [f for f in IDENTITY_FIELDS if f not in ignore and old.get(f) != new.get(f)]


def check_or_write_provenance(out: Path, provenance: dict) -> None:
    """First run writes provenance.json; later runs (resume, other shards) must match it field by field."""
    path = out / PROVENANCE_FILE
    provenance = json.loads(json.dumps(provenance))  # compare as stored: tuples become lists
    if path.exists():
        old = json.loads(path.read_text())
        diffs = setup_differences(old, provenance)
        if diffs:
            lines = [f"  {f}: on disk {old.get(f)!r}, now {provenance.get(f)!r}" for f in diffs]
            raise LabelledDatasetError(
                f"{out} holds labels from a different setup; refusing to mix them:\n"
                + "\n".join(lines)
                + "\nUse another --out folder, or the original settings to resume."
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(dict(provenance, complete=False), indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def describe_worker(device, batch_size: int) -> str:
    """The machine that answers a chunk, stored in the chunk file. Why: one job may be labelled by several machines
    (shards, a resume elsewhere), and bf16 answers differ slightly between devices, so a merged dataset should say
    which chunks came from where."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type != "cpu":
        name = str(device)
    else:
        name = platform.processor() or platform.machine()
        try:  # Linux names the CPU model here; platform.processor() is often just the architecture
            with open("/proc/cpuinfo") as f:
                name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        name += f", {torch.get_num_threads()} threads"
    return f"{device.type} ({name}), batch size {batch_size}"


def write_chunk(out: Path, k: int, texts: list[str], answers: np.ndarray, worker: str = "") -> None:
    path = chunk_path(out, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npz")
    # Compressed: the texts are stored as fixed-width UTF-32, mostly padding, which would dominate the file.
    np.savez_compressed(tmp, texts=np.array(texts, dtype=str), answers=answers.astype(np.float32), worker=worker)
    os.replace(tmp, path)


def read_chunk_file(path) -> tuple[list[str], np.ndarray, str]:
    """(texts, answers, worker) of one chunk file; worker is "" in files written before workers were recorded."""
    with np.load(path, allow_pickle=False) as z:
        return z["texts"].tolist(), z["answers"], str(z["worker"]) if "worker" in z.files else ""


def summarize_workers(workers: dict[int, str], max_ranges: int = 4) -> list[str]:
    """chunk index -> worker, as lines like "chunks 0-49: cpu (...), batch size 16", one per worker."""
    by_worker: dict[str, list[int]] = {}
    for k in sorted(workers):
        by_worker.setdefault(workers[k] or "not recorded (chunk written before workers were recorded)", []).append(k)
    lines = []
    for worker, ks in by_worker.items():
        ranges, start = [], ks[0]
        for a, b in zip(ks, ks[1:] + [None]):
            if b != a + 1:
                ranges.append(str(start) if start == a else f"{start}-{a}")
                start = b
        shown = ", ".join(ranges[:max_ranges]) + (f", ... ({len(ks)} chunks)" if len(ranges) > max_ranges else "")
        lines.append(f"chunk{'s' if len(ks) > 1 else ''} {shown}: {worker}")
    return lines


def read_chunk(out: Path, k: int, expected_texts: list[str] | None = None) -> tuple[np.ndarray, str]:
    """(answers, worker) of chunk k, checked against the texts the corpus puts there."""
    texts, answers, worker = read_chunk_file(chunk_path(out, k))
    if expected_texts is not None and texts != list(expected_texts):
        raise LabelledDatasetError(f"{chunk_path(out, k)} holds other texts than the corpus expects; delete it")
    return answers, worker


def answers_by_text(folder) -> dict[str, np.ndarray]:
    """text -> answers from the chunk files of a labelling folder, finished or not."""
    table: dict[str, np.ndarray] = {}
    for path in sorted((Path(folder) / PARTS_DIR).glob("chunk-*.npz")):
        texts, rows, _ = read_chunk_file(path)
        for text, answers in zip(texts, rows):
            table.setdefault(text, answers)
    return table


def reusable_answers(folders, provenance: dict) -> dict[str, np.ndarray]:
    """text -> answers from the chunk files of other labelling folders made with the same teacher setup.

    Why: a corpus that grows or changes (more stories, another subset) should not pay the teacher again for texts
    it has answered already. Only answers from an identical setup (teacher, prompt, dtype, questions) are taken.
    """
    provenance = json.loads(json.dumps(provenance))
    table: dict[str, np.ndarray] = {}
    for folder in folders:
        folder = Path(folder)
        if not (folder / PROVENANCE_FILE).exists():
            raise LabelledDatasetError(f"--reuse {folder}: no {PROVENANCE_FILE} (not a `qaemb-fast label` folder)")
        old = json.loads((folder / PROVENANCE_FILE).read_text())
        diffs = setup_differences(old, provenance, ignore=REUSE_MAY_DIFFER)
        if diffs:
            raise LabelledDatasetError(f"--reuse {folder}: labelled with another setup ({', '.join(diffs)} differ)")
        for text, answers in answers_by_text(folder).items():
            table.setdefault(text, answers)
    return table


def run_labelling(config: LabelConfig, teacher=None, items=None) -> Path:
    """Label this shard's missing chunks, then merge if every chunk is there. Returns the output folder.

    teacher / items may be passed in (tests, notebooks); otherwise they are loaded from the config.
    """
    from tqdm.auto import tqdm

    from distill.corpus import corpus_hash, load_corpus_spec
    from distill.teacher import PromptConfig, Teacher

    out = Path(config.out)
    question_set = as_question_set(config.questions)
    if items is None:
        items = load_corpus_spec(config.corpus)
    if not items:
        raise ValueError(f"corpus {config.corpus!r} is empty")
    texts = [it.text for it in items]
    unique, _ = unique_texts(texts)
    num_chunks = -(-len(unique) // config.chunk_size)
    mine = shard_chunks(num_chunks, config.num_shards, config.shard_index)
    todo = [k for k in mine if not chunk_path(out, k).exists()]

    if teacher is None:
        prompt = PromptConfig(template=config.prompt, system=config.system, few_shot=config.few_shot)
        teacher = Teacher.from_pretrained(
            config.teacher, questions=question_set, prompt=prompt, dtype=config.dtype, device=config.device
        )
    if list(teacher.questions) != list(question_set.questions):
        raise ValueError("the teacher was built for other questions than the job's question set")
    provenance = dict(
        teacher.provenance(),
        questions=list(question_set.questions),
        question_set_name=question_set.name,
        question_set_hash=question_set.hash,
        corpus=config.corpus,
        corpus_hash=corpus_hash(items),
        num_texts=len(texts),
        num_unique_texts=len(unique),
        chunk_size=config.chunk_size,
    )
    check_or_write_provenance(out, provenance)
    reused = reusable_answers(config.reuse, provenance) if config.reuse else {}

    n_q = len(question_set)

    def pairs(chunks) -> int:
        return sum(min(config.chunk_size, len(unique) - k * config.chunk_size) for k in chunks) * n_q

    done_pairs, total_pairs = pairs(set(mine) - set(todo)), pairs(mine)
    if config.max_chunks is not None:
        todo = todo[: config.max_chunks]
    bar = tqdm(
        total=total_pairs,
        initial=done_pairs,
        unit="pair",
        desc=f"labelling shard {config.shard_index}/{config.num_shards}",
        disable=not config.progress,
        smoothing=0.05,
    )
    start, n_reused = time.time(), 0
    worker = describe_worker(teacher.device, config.batch_size)
    for k in todo:
        chunk_texts = unique[k * config.chunk_size : (k + 1) * config.chunk_size]
        answers, copied = [], 0
        for text in chunk_texts:
            if text in reused:
                answers.append(reused[text])
                copied += 1
            else:
                answers.append(teacher.answer_text(text, question_set.questions, config.batch_size))
            bar.update(n_q)  # per text, so a slow teacher still shows progress within a chunk
        n_reused += copied
        chunk_worker = (
            worker if not copied else COPIED if copied == len(chunk_texts) else f"{worker}, some texts {COPIED}"
        )
        write_chunk(out, k, chunk_texts, np.stack(answers), chunk_worker)
    bar.close()
    if todo and config.progress:
        n_pairs, seconds = pairs(todo) - n_reused * n_q, time.time() - start
        print(f"labelled {n_pairs} pairs in {seconds:.0f} s ({n_pairs / seconds:.1f} pairs/s)", end="")
        print(f"; copied {n_reused} texts' answers from --reuse" if reused else "")

    if config.merge and all(chunk_path(out, k).exists() for k in range(num_chunks)):
        merge_labels(out, items)
    return out


def merge_labels(out, items, allow_partial: bool = False, into=None) -> Path:
    """Assemble the chunk files into OUT/dataset (or `into`), one row per corpus item, in corpus order.

    allow_partial: keep only the rows whose chunk is done (for a preliminary model); the provenance says so.
    """
    from distill.corpus import corpus_hash

    out = Path(out)
    provenance = json.loads((out / PROVENANCE_FILE).read_text())
    if provenance["corpus_hash"] != corpus_hash(items):
        raise LabelledDatasetError(f"{out} was labelled from another corpus (hash mismatch)")
    texts = [it.text for it in items]
    unique, inverse = unique_texts(texts)
    c = provenance["chunk_size"]
    num_chunks = -(-len(unique) // c)
    answers = np.full((len(unique), len(provenance["questions"])), np.nan, dtype=np.float32)
    missing, workers = [], {}
    for k in range(num_chunks):
        if not chunk_path(out, k).exists():
            missing.append(k)
            continue
        answers[k * c : (k + 1) * c], workers[k] = read_chunk(out, k, unique[k * c : (k + 1) * c])
    if missing and not allow_partial:
        raise LabelledDatasetError(f"{out}: {len(missing)} of {num_chunks} chunks are not labelled yet")
    rows = [i for i in range(len(texts)) if not np.isnan(answers[inverse[i], 0])]
    if not rows:
        raise LabelledDatasetError(f"{out}: no chunk is labelled yet")
    prov = dict(provenance, labelled_by=summarize_workers(workers))
    if missing:
        prov.update(
            partial=True, chunks_done=num_chunks - len(missing), chunks_total=num_chunks, labels_folder=str(out)
        )
    return write_labelled_dataset(
        into or out,
        [texts[i] for i in rows],
        [items[i].doc_id for i in rows],
        answers[inverse[rows]],
        prov,
    )
