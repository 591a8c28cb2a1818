"""The labelling job: a teacher answers every question for every corpus text, resumably and in shards.

Layout of the output folder (see distill/labelled_dataset.py for what readers see)::

    OUT/provenance.json          teacher (+ weights hash), prompt, dtype, questions + hash, corpus hash, chunk size
    OUT/parts/chunk-000042.npz   answers for unique texts [42*C, 43*C), written atomically (tmp file + rename),
                                 with the texts and the worker (device, batch size) that answered them
    OUT/parts/chunk-000042.claim the run labelling chunk 42 now (pid, host); gone once the chunk file is written
    OUT/dataset/                 the final `datasets` dataset, written once every chunk exists

Why it is kill-safe: every file appears only complete (chunk files and provenance.json by temp file + os.replace,
the dataset folder by temp folder + renames, provenance.json last), so a job killed at any moment loses at most
the chunk it was working on, and a restart skips every chunk already on disk. Each chunk also stores its
texts, which are checked against the corpus on merge, so a chunk can never be attached to the wrong rows.
SIGINT and SIGTERM stop a job at once (`qaemb_fast.jobs.StopOnSignals`), keeping every finished chunk.

Why two runs on one folder never label the same chunk: each claims a chunk before labelling it (ChunkClaims);
claims of killed runs are taken over.

Why sharding is exact: chunks are defined by the de-duplicated corpus alone; shard i of N takes the chunks
k with k % N == i. Any set of workers (any N, even mixed over time) produces the same chunk files, so the merged
result equals an unsharded run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from distill.calibration import CONTENT_FREE_INPUTS, DEFAULT_SHIFT, Calibration, make_calibration
from distill.labelled_dataset import (
    ANSWERS,
    DATASET_DIR,
    PROVENANCE_FILE,
    TEXT,
    LabelledDatasetError,
    load_labelled_dataset,
    read_provenance,
    write_labelled_dataset,
)
from distill.llama_cpp_engine import ENGINES
from distill.offline_teachers import DEFAULT_TEACHER
from qaemb_fast.answer_table import AnswerTable
from qaemb_fast.jobs import StopOnSignals, atomic_write_json
from qaemb_fast.questions import as_question_set

PARTS_DIR = "parts"
COPIED = "copied from --reuse"  # the worker of answers copied from another folder rather than asked
# Fields that determine the answers: a resumed or parallel job must agree on all of them. "teacher" compares the
# weights (TEACHER_HASH), not the name, so a teacher named by offline name, folder path or hub id is one teacher.
IDENTITY_FIELDS = (
    "teacher",
    "max_text_tokens",
    "prompt",
    "dtype",
    "yes_token_ids",
    "no_token_ids",
    "question_set_hash",
    "calibration",
    "corpus_hash",
    "num_unique_texts",
    "chunk_size",
    "questions_per_text",  # only in sparse jobs' provenance (dense folders have neither field)
    "question_sample_seed",
)
# A folder whose answers are reused (--reuse) must agree on every identity field except these, which describe
# the corpus rather than how each text was answered.
REUSE_MAY_DIFFER = (  # chunks hold raw answers; a reused row must hold every question this job asks of its text
    "corpus_hash",
    "num_unique_texts",
    "chunk_size",
    "calibration",
    "questions_per_text",
    "question_sample_seed",
)
TEACHER_HASH = "teacher_weights_sha256"
REUSED_FROM = "reused_from"  # the --reuse folders whose answers a job copied
QUESTIONS_FILE = "questions_file"  # the --questions file a job read (the provenance holds its questions, not its path)
LABEL_CALIBRATIONS = ("shifted", "contextual", "none")  # "platt" needs labels: see distill/calibration.py
MERGE_CLAIM = "merge"
# Seconds without a heartbeat after which a claim held on another machine counts as abandoned. A heartbeat is
# written after every text, which takes seconds to ~2 minutes (109 questions on a slow CPU).
CLAIM_TIMEOUT = 1800.0


@dataclass
class LabelConfig:
    """One labelling job. The `qaemb-fast label` options are generated from these fields and their comments."""

    teacher: str = DEFAULT_TEACHER  # offline teacher name, HF hub id, local folder or .gguf file
    questions: str = "default"  # question-set file (.json or .txt), or "default" for the packaged set
    corpus: str = "builtin:default"  # texts: a .txt/.csv/.jsonl file, a saved `datasets` folder, or builtin:NAME[:N]
    out: str = "labels"  # output folder (resumed if it exists)
    prompt: str = "default"  # 'default', 'paper', 'strict', or a template containing {text} then {question}
    system: str | None = None  # system prompt (default: the chat template's own)
    few_shot: str = field(
        default="paper", metadata={"choices": ("paper", "hard-negatives", "none")}
    )  # answered example turns first
    dtype: str = "auto"  # auto (bf16 where the hardware runs it natively, else fp32), bf16, fp16 or fp32
    device: str | None = None  # cpu, cuda, cuda:1 ... (default: cuda if available)
    engine: str = field(
        default="auto", metadata={"choices": ENGINES}
    )  # what runs the teacher: auto = llama.cpp (pip install -e ".[cpu-fast]") on a CPU without native bf16 for a GGUF teacher, else torch
    num_shards: int = 1  # total number of workers
    shard_index: int = 0  # this worker's index in [0, num-shards)
    chunk_size: int = 16  # texts per resumable chunk file: the most work a kill can lose
    batch_size: int = 16  # questions per forward pass (sorted by length; bigger batches pad more)
    max_text_tokens: int | None = None  # most tokens of a text the teacher reads (default: what fits its context)
    calibration: str = field(
        default="shifted", metadata={"choices": LABEL_CALIBRATIONS}
    )  # how raw P(yes) becomes the stored answers (distill/calibration.py); chunk files keep the raw answers
    recalibrate: bool = False  # do not label: record --calibration for a labelled folder and rewrite its dataset
    max_chunks: int | None = None  # stop after this many new chunks (for time-boxed runs)
    merge: bool = True  # write OUT/dataset when this run completes the corpus (--no-merge: only chunk files)
    questions_per_text: int = 0  # ask each text a seeded sample of this many questions (0: all of them)
    question_sample_seed: int = 0  # seed of that sample (with the text itself: the same text gets the same sample)
    reuse: tuple[str, ...] = field(
        default=(), metadata={"metavar": "DIR"}
    )  # earlier output folders (same teacher setup) whose answers are copied
    progress: bool = True  # show a progress bar


def unique_texts(texts) -> tuple[list[str], np.ndarray]:
    """De-duplicate in first-occurrence order. Returns (unique, row -> unique index)."""
    index, unique, inverse = {}, [], np.empty(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        if t not in index:
            index[t] = len(unique)
            unique.append(t)
        inverse[i] = index[t]
    return unique, inverse


def asked_questions(text: str, num_questions: int, questions_per_text: int, seed: int = 0) -> np.ndarray:
    """Indices (sorted) of the questions a sparse job asks of `text`: all of them when questions_per_text is 0 or
    covers the set, else a sample drawn from a generator seeded by (seed, the text's SHA-256).

    Why seeded by the text and not by its position: every shard, resume and corpus order gives a text the same
    sample, and a grown corpus keeps the samples of the texts it already had."""
    if not 0 < questions_per_text < num_questions:
        return np.arange(num_questions)
    digest = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    rng = np.random.default_rng([seed, digest])
    return np.sort(rng.choice(num_questions, size=questions_per_text, replace=False))


def chunk_path(out: Path, k: int) -> Path:
    return out / PARTS_DIR / f"chunk-{k:06d}.npz"


def shard_chunks(num_chunks: int, num_shards: int, shard_index: int) -> list[int]:
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"--shard-index must be in [0, {num_shards}), got {shard_index}")
    return [k for k in range(num_chunks) if k % num_shards == shard_index]


def teacher_aliases(name) -> set[str]:
    """The names one teacher goes by: as given, and the folder it resolves to (an offline teacher's prepared
    folder, or a local path), so that a name and a path to the same folder match."""
    from distill.offline_teachers import OFFLINE_TEACHERS, teacher_folder

    if not name:
        return set()
    path = teacher_folder(name) if name in OFFLINE_TEACHERS else Path(name)
    return {str(name)} | ({str(path.resolve())} if path.exists() else set())


def same_teacher(old: dict, new: dict) -> bool:
    """Two provenances name the same teacher: same weights hash; or, for folders labelled before the hash was
    recorded, the same name or names that resolve to the same folder."""
    if old.get(TEACHER_HASH) and new.get(TEACHER_HASH):
        return old[TEACHER_HASH] == new[TEACHER_HASH]
    return bool(teacher_aliases(old.get("teacher")) & teacher_aliases(new.get("teacher")))


def calibration_setup(provenance: dict) -> tuple:
    """What defines a folder's calibration: (kind, shift, content-free inputs). A folder labelled before calibration
    existed holds raw answers: kind "none". The measured content-free log-odds are not compared: they differ by
    rounding between devices, and every later run reuses the ones the first run stored."""
    c = Calibration.from_dict(provenance.get("calibration"))
    return (c.kind, c.shift, tuple(c.content_free_inputs) if c.kind != "none" else ())


def setup_differences(old: dict, new: dict, ignore=()) -> list[str]:
    """The identity fields (see IDENTITY_FIELDS) on which two labelling setups disagree."""

    def differ(f) -> bool:
        if f == "teacher":
            return not same_teacher(old, new)
        if f == "calibration":
            return calibration_setup(old) != calibration_setup(new)
        return old.get(f) != new.get(f)

    return [f for f in IDENTITY_FIELDS if f not in ignore and differ(f)]


def _describe(provenance: dict, f: str) -> str:
    if f == "teacher" and provenance.get(TEACHER_HASH):
        return f"{provenance.get(f)!r} (weights {provenance[TEACHER_HASH][:19]}…)"
    if f == "calibration":
        return Calibration.from_dict(provenance.get(f)).describe()
    return repr(provenance.get(f))


def check_or_write_provenance(out: Path, provenance: dict) -> None:
    """First run writes provenance.json; later runs (resume, other shards) must match it field by field.

    A folder labelled before the teacher's weights hash was recorded gets it added on its first resume by the same
    teacher, so from then on the teacher is recognised by its weights whatever it is called."""
    path = out / PROVENANCE_FILE
    provenance = json.loads(json.dumps(provenance))  # compare as stored: tuples become lists
    if path.exists():
        old = read_provenance(out)
        diffs = setup_differences(old, provenance)
        if diffs:
            lines = [f"  {f}: on disk {_describe(old, f)}, now {_describe(provenance, f)}" for f in diffs]
            raise LabelledDatasetError(
                f"{out} holds labels from a different setup; refusing to mix them:\n"
                + "\n".join(lines)
                + "\nUse another --out folder, or the original settings to resume."
            )
        if not old.get(TEACHER_HASH) and provenance.get(TEACHER_HASH):
            atomic_write_json(path, dict(old, **{TEACHER_HASH: provenance[TEACHER_HASH]}))
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, dict(provenance, complete=False))


def _pid_alive(pid) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there; rely on the heartbeat timeout
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError, TypeError):
        return True  # exists but not ours (EPERM), or unreadable: do not take it over
    return True


class ChunkClaims:
    """Which run works on which chunk, so that runs sharing an output folder never label the same chunk twice.

    A claim is a file parts/NAME.claim holding the claimer's pid, host and a token. It appears complete or not at
    all (a finished temp file hard-linked into place, which fails if the claim exists), is touched after every text
    (a heartbeat), and is removed once the chunk file has landed. A claim is abandoned, and taken over, when its
    process is gone (same host), or when another host's claim has had no heartbeat for CLAIM_TIMEOUT seconds; the
    take-over happens under a lock file, so two runs never both take over one claim. One run per process.
    """

    def __init__(self, parts: Path):
        self.parts = Path(parts)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.held: dict[str, str] = {}  # name -> token

    def path(self, name: str) -> Path:
        return self.parts / f"{name}.claim"

    def claim(self, name: str) -> bool:
        """Claim `name` (a chunk's file stem, or MERGE_CLAIM); False if a live run holds it."""
        self.parts.mkdir(parents=True, exist_ok=True)
        if self._create(name):
            return True
        with self._lock():
            holder = self.holder(name)
            if holder is not None and not self._abandoned(name, holder):
                return False
            self.path(name).unlink(missing_ok=True)
        return self._create(name)

    def holder(self, name: str) -> dict | None:
        """The claim's content, {} if unreadable, None if there is no claim."""
        try:
            return json.loads(self.path(name).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def heartbeat(self, name: str) -> None:
        if name in self.held:
            with contextlib.suppress(FileNotFoundError):  # taken over after a timeout: the work is the same
                os.utime(self.path(name))

    def release(self, name: str) -> None:
        token = self.held.get(name)
        if token is not None and (self.holder(name) or {}).get("token") == token:
            self.path(name).unlink(missing_ok=True)
        self.held.pop(name, None)  # only now: a signal during the unlink leaves it to release_all

    def release_all(self) -> None:
        for name in list(self.held):
            self.release(name)

    def _create(self, name: str) -> bool:
        token = uuid.uuid4().hex
        info = {"pid": self.pid, "host": self.host, "time": time.time(), "token": token}
        tmp = self.parts / f".{name}.claim.tmp{self.pid}"
        tmp.write_text(json.dumps(info))
        # Held before the claim file can exist: a signal at any moment after the link leaves it to release_all,
        # which removes a claim only if it holds this token (so never another run's).
        self.held[name] = token
        try:
            os.link(tmp, self.path(name))
        except FileExistsError:
            self.held.pop(name, None)
            return False
        except OSError:  # a file system without hard links: an exclusive create (a kill here may leave it empty)
            try:
                fd = os.open(self.path(name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                self.held.pop(name, None)
                return False
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(info))
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def _abandoned(self, name: str, holder: dict) -> bool:
        if holder.get("host") == self.host and "pid" in holder:
            if holder["pid"] == self.pid:
                return name not in self.held  # left by an earlier, interrupted run in this process
            return not _pid_alive(holder["pid"])
        try:
            age = time.time() - self.path(name).stat().st_mtime
        except FileNotFoundError:
            return True
        return age > (CLAIM_TIMEOUT if holder else 60.0)  # unreadable: only an interrupted exclusive create

    def _lock(self):
        return _FileLock(self.parts / ".claims.lock")


class _FileLock:
    """An exclusive lock on a file (fcntl.flock); where flock does not exist, no lock (claims stay exclusive, only
    the take-over of abandoned claims is then unguarded)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.f = open(self.path, "a")
        try:
            import fcntl

            fcntl.flock(self.f, fcntl.LOCK_EX)
        except ImportError:
            pass
        return self

    def __exit__(self, *exc):
        self.f.close()  # closing releases the lock
        return False


def remove_leftovers(out: Path) -> None:
    """What killed runs on this machine left behind: chunk and claim temp files, dataset temp folders, and claims
    of chunks that were written before their claim was released. Called while holding the merge claim with every
    chunk done, when no other run writes in the folder."""
    import re
    import shutil

    def dead(pid) -> bool:
        return pid == os.getpid() or not _pid_alive(pid)

    candidates = [
        *(out / PARTS_DIR).glob(".*"),
        *out.glob(f"{DATASET_DIR}.tmp*"),
        *out.glob(".*.tmp*"),
        *out.glob(".*.old*"),
    ]
    for path in candidates:
        m = re.search(r"\.(?:tmp|old)(\d+)", path.name)
        if m and dead(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    claims = ChunkClaims(out / PARTS_DIR)
    for path in (out / PARTS_DIR).glob("chunk-*.claim"):
        holder = claims.holder(path.stem)
        if path.with_suffix(".npz").exists() and holder and holder.get("host") == claims.host and dead(holder["pid"]):
            path.unlink(missing_ok=True)


def describe_worker(device, batch_size: int, engine: str = "torch") -> str:
    """The machine and engine that answer a chunk, stored in the chunk file. Why: one job may be labelled by several
    machines (shards, a resume elsewhere), and answers differ slightly between devices and engines (bf16, llama.cpp's
    quantised activations), so a merged dataset should say which chunks came from where."""
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
    return f"{device.type} ({name}), batch size {batch_size}" + ("" if engine == "torch" else f", engine {engine}")


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


def answers_by_text(folder, raw: bool = False) -> AnswerTable:
    """The teacher's answers in a labelling folder as a text -> answers table (`qaemb_fast.AnswerTable`, with the
    questions and the teacher's name): from the chunk files, so an unfinished job counts, or from the merged
    dataset of a folder that has no chunk files (`--export-partial`, `questions subset-labels`).

    The answers are calibrated as the folder's provenance says (what its merged dataset holds); raw=True gives the
    teacher's raw P(yes) instead (what the chunk files hold)."""
    folder = Path(folder)
    provenance = read_provenance(folder)
    calibration = Calibration.from_dict(provenance.get("calibration"))
    chunks = sorted((folder / PARTS_DIR).glob("chunk-*.npz"))
    if chunks:
        texts, rows = [], []
        for path in chunks:
            chunk_texts, answers, _ = read_chunk_file(path)
            texts += chunk_texts
            rows.append(answers)
        answers = np.concatenate(rows)
        if not raw:
            answers = calibration(answers)
    else:
        ds, provenance, _ = load_labelled_dataset(folder)
        texts, answers = list(ds[TEXT]), np.asarray(ds[ANSWERS], dtype=np.float32)
        if raw:
            answers = calibration.invert(answers)
    return AnswerTable(texts, answers, provenance["questions"], name=provenance.get("teacher", "teacher"))


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
        old = read_provenance(folder)
        diffs = setup_differences(old, provenance, ignore=REUSE_MAY_DIFFER)
        if diffs:
            raise LabelledDatasetError(f"--reuse {folder}: labelled with another setup ({', '.join(diffs)} differ)")
        for text, answers in answers_by_text(folder, raw=True).items():
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
            config.teacher,
            questions=question_set,
            prompt=prompt,
            dtype=config.dtype,
            device=config.device,
            max_text_tokens=config.max_text_tokens,
            engine=config.engine,
        )
    if config.max_text_tokens != teacher.max_text_tokens:
        raise ValueError(
            f"max_text_tokens: the job says {config.max_text_tokens}, the teacher {teacher.max_text_tokens}"
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
    n_q = len(question_set)
    sparse = 0 < config.questions_per_text < n_q
    if config.questions_per_text < 0:
        raise ValueError(f"questions_per_text must be >= 0, got {config.questions_per_text}")
    if sparse:  # recorded only for sparse jobs, so dense folders written before it existed still resume
        provenance.update(
            questions_per_text=config.questions_per_text, question_sample_seed=config.question_sample_seed
        )
    asked_per_text = config.questions_per_text if sparse else n_q
    provenance["calibration"] = job_calibration(out, config.calibration, teacher, question_set.questions)
    if config.recalibrate:
        return recalibrate(out, items, provenance)
    check_or_write_provenance(out, provenance)
    reused = reusable_answers(config.reuse, provenance) if config.reuse else {}
    # Not part of the setup: recorded so that a model card can repeat the command (with --reuse, the cheap one).
    stored, notes = read_provenance(out), {}
    if config.reuse:
        notes[REUSED_FROM] = list(dict.fromkeys([*stored.get(REUSED_FROM, []), *map(str, config.reuse)]))
    if isinstance(config.questions, (str, Path)) and Path(config.questions).is_file():
        notes[QUESTIONS_FILE] = str(config.questions)
    if any(stored.get(key) != value for key, value in notes.items()):
        atomic_write_json(out / PROVENANCE_FILE, dict(stored, **notes))

    def pairs(chunks) -> int:
        return sum(min(config.chunk_size, len(unique) - k * config.chunk_size) for k in chunks) * asked_per_text

    def answer(text: str) -> tuple[np.ndarray, bool]:
        """(raw answers to every question, NaN where not asked; copied from --reuse?)"""
        asked = asked_questions(text, n_q, config.questions_per_text, config.question_sample_seed)
        row = reused.get(text)
        if row is not None and not np.isnan(row[asked]).any():
            return (row if not sparse else np.where(np.isin(np.arange(n_q), asked), row, np.nan)), True
        row = np.full(n_q, np.nan, dtype=np.float32)
        row[asked] = teacher.answer_text(text, [question_set.questions[j] for j in asked], config.batch_size)
        return row, False

    done_pairs, total_pairs = pairs(set(mine) - set(todo)), pairs(mine)
    # Say once, before hours of work, how many texts the teacher will read only the beginning of.
    to_ask = [t for k in todo for t in unique[k * config.chunk_size : (k + 1) * config.chunk_size] if t not in reused]
    teacher.warn_truncated(to_ask, question_set.questions)
    bar = tqdm(
        total=total_pairs,
        initial=done_pairs,
        unit="pair",
        desc=f"labelling shard {config.shard_index}/{config.num_shards}",
        disable=not config.progress,
        smoothing=0.05,
    )
    start, n_reused, done, busy = time.time(), 0, [], []
    worker = describe_worker(teacher.device, config.batch_size, teacher.engine_name)
    claims = ChunkClaims(out / PARTS_DIR)
    # SIGINT / SIGTERM stop the job at once, keeping every chunk already written (the one in progress is lost);
    # the claims of this run are released on the way out, and Interrupted (a KeyboardInterrupt) propagates.
    with StopOnSignals() as stop:
        try:
            for k in todo:
                if config.max_chunks is not None and len(done) >= config.max_chunks:
                    break
                name = chunk_path(out, k).stem
                if chunk_path(out, k).exists():
                    continue  # written by another run since this one started
                if not claims.claim(name):
                    busy.append(k)  # another live run is labelling it
                    continue
                if chunk_path(out, k).exists():  # finished by another run between our check and our claim
                    claims.release(name)
                    continue
                chunk_texts = unique[k * config.chunk_size : (k + 1) * config.chunk_size]
                answers, copied = [], 0
                for text in chunk_texts:
                    row, was_copied = answer(text)
                    answers.append(row)
                    copied += was_copied
                    stop.check()
                    claims.heartbeat(name)
                    bar.update(asked_per_text)  # per text, so a slow teacher still shows progress within a chunk
                n_reused += copied
                chunk_worker = (
                    worker if not copied else COPIED if copied == len(chunk_texts) else f"{worker}, some texts {COPIED}"
                )
                write_chunk(out, k, chunk_texts, np.stack(answers), chunk_worker)
                claims.release(name)
                done.append(k)
                stop.check()
            bar.close()
            if done and config.progress:
                n_pairs, seconds = pairs(done) - n_reused * asked_per_text, time.time() - start
                print(f"labelled {n_pairs} pairs in {seconds:.0f} s ({n_pairs / seconds:.1f} pairs/s)", end="")
                print(f"; copied {n_reused} texts' answers from --reuse" if reused else "")
            still = [k for k in busy if not chunk_path(out, k).exists()]
            if still:
                print(
                    f"{len(still)} chunk(s) are being labelled by another run on this folder (e.g. chunk {still[0]}: "
                    f"{claims.holder(chunk_path(out, still[0]).stem)}); the last run to finish writes the dataset"
                )
            if config.merge and all(chunk_path(out, k).exists() for k in range(num_chunks)):
                if claims.claim(MERGE_CLAIM):
                    remove_leftovers(out)
                    if not already_merged(out, len(texts)):
                        merge_labels(out, items)
                    stop.check()
                else:
                    print(f"another run is writing the dataset of {out} ({claims.holder(MERGE_CLAIM)})")
        finally:
            bar.close()
            claims.release_all()
    return out


def job_calibration(out: Path, kind: str, teacher, questions) -> dict:
    """The calibration of a job as stored in its provenance. A folder that already holds this calibration keeps the
    content-free log-odds its first run measured (every shard and resume applies the same transform); otherwise
    the teacher answers the content-free inputs now (3 prompts per question: negligible next to the job)."""
    if kind == "none":
        return Calibration("none", list(questions)).to_dict()
    wanted = (kind, DEFAULT_SHIFT if kind == "shifted" else 0.0, CONTENT_FREE_INPUTS)
    if (out / PROVENANCE_FILE).exists():
        old = read_provenance(out)
        if calibration_setup(old) == wanted and Calibration.from_dict(old.get("calibration")).questions == questions:
            return old["calibration"]
    return make_calibration(kind, teacher, questions).to_dict()


def recalibrate(out: Path, items, provenance: dict) -> Path:
    """Give a labelled folder another calibration: the chunk files keep the raw answers, the provenance records the
    new calibration and the merged dataset is rewritten with it (when every chunk is there)."""
    old, provenance = read_provenance(out), json.loads(json.dumps(provenance))  # compare as stored
    diffs = [f for f in setup_differences(old, provenance) if f != "calibration"]
    if diffs:
        raise LabelledDatasetError(f"--recalibrate {out}: the folder was labelled with another setup ({diffs})")
    atomic_write_json(out / PROVENANCE_FILE, dict(old, calibration=provenance["calibration"]))
    num_chunks = -(-old["num_unique_texts"] // old["chunk_size"])
    if all(chunk_path(out, k).exists() for k in range(num_chunks)):
        merge_labels(out, items)
    print(f"{out}: calibration {Calibration.from_dict(provenance['calibration']).describe()}")
    return out


def already_merged(out: Path, num_texts: int) -> bool:
    """OUT/dataset is complete: written by a merge that finished (the provenance is written last)."""
    if not (out / DATASET_DIR).is_dir():
        return False
    prov = read_provenance(out)
    return prov.get("complete") is True and prov.get("num_rows") == num_texts and "labelled_by" in prov


def merge_labels(out, items, allow_partial: bool = False, into=None) -> Path:
    """Assemble the chunk files into OUT/dataset (or `into`), one row per corpus item, in corpus order.

    allow_partial: keep only the rows whose chunk is done (for a preliminary model); the provenance says so.
    """
    from distill.corpus import corpus_hash

    out = Path(out)
    provenance = read_provenance(out)
    if provenance["corpus_hash"] != corpus_hash(items):
        raise LabelledDatasetError(f"{out} was labelled from another corpus (hash mismatch)")
    texts = [it.text for it in items]
    unique, inverse = unique_texts(texts)
    c = provenance["chunk_size"]
    num_chunks = -(-len(unique) // c)
    answers = np.full((len(unique), len(provenance["questions"])), np.nan, dtype=np.float32)
    missing, workers, labelled = [], {}, np.zeros(len(unique), dtype=bool)
    for k in range(num_chunks):
        if not chunk_path(out, k).exists():
            missing.append(k)
            continue
        answers[k * c : (k + 1) * c], workers[k] = read_chunk(out, k, unique[k * c : (k + 1) * c])
        labelled[k * c : (k + 1) * c] = True
    if missing and not allow_partial:
        raise LabelledDatasetError(f"{out}: {len(missing)} of {num_chunks} chunks are not labelled yet")
    rows = [i for i in range(len(texts)) if labelled[inverse[i]]]
    if not rows:
        raise LabelledDatasetError(f"{out}: no chunk is labelled yet")
    # Chunk files hold the teacher's raw P(yes); the dataset holds them calibrated as the provenance records.
    answers = Calibration.from_dict(provenance.get("calibration"))(answers)
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
