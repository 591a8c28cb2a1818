"""Real-fMRI benchmark: how well does each feature space predict measured brain responses to held-out stories?

Data: a TR-level export of story-listening fMRI (`qaemb_fast.voxels.trlevel`; e.g. the real-fmri folder of
OpenNeuro ds003020 for UTS01/UTS02: ~100 stories, 200 response PCs per TR, 3 standard test stories). Per subject,
every feature space is fitted on the training stories and scored on the test stories with the same pipeline
(`VoxelEncoder`: Lanczos to TRs, z-score per story, FIR delays 1-4, himalaya ridge with one alpha per PC chosen by
cross-validation over whole training stories), side by side:

    student      the student's answers to each word's context window (the word + the 10 before it)
    teacher      the teacher's answers to the same windows, read from labelling folders (`qaemb-fast label`);
                 skipped, with a note and a file of the missing windows, unless every window has an answer
    minilm       MiniLM sentence embeddings (all-MiniLM-L6-v2, mean-pooled) of the same windows
    eng1000      an Eng1000-like word space: PPMI-SVD of co-occurrence counts on the *training* stories' words +
                 WordNet's example sentences (never the test stories); or the real Eng1000 from a given file
    word_rate    one column of ones per word (the field's word-rate baseline)
    random       random yes/no answers (fixed per window) to as many questions as the student answers

Reported per subject: mean test Pearson r over all PCs and over the first 10 PCs, each with a 95 % interval, and
the difference student minus each space with its 95 % interval. Intervals: a paired block bootstrap over test
TRs: each test story is cut into consecutive blocks of `block_trs` TRs (the last one shorter; 10 TRs = 20 s spans
the haemodynamic response and most of the autocorrelation), blocks are resampled with replacement, and every
space is scored on the same resamples. The test stories are evaluation data only: nothing here fits on them.

    from evaluation.real_fmri import RealFmriBenchmarkConfig, run_real_fmri_benchmark, results_markdown
    result = run_real_fmri_benchmark(RealFmriBenchmarkConfig(data="../shared/data/real-fmri", out="out/fmri"))
    print(results_markdown(result))
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from evaluation.voxels_synthetic import RandomAnswers, cooccurrence_embedding
from qaemb_fast.answer_table import AnswerTable
from qaemb_fast.voxels.encoder import VoxelEncoder, VoxelEncoderConfig, pearson_r
from qaemb_fast.voxels.features import ContextWindowAnswers, WordRate, context_windows, zscore
from qaemb_fast.voxels.trlevel import (
    list_subjects,
    list_trlevel_stories,
    load_trlevel_responses,
    load_trlevel_stories,
    trlevel_feature_config,
)

# name -> label in the table; the order of the table's rows
SPACES = {
    "student": "student QA",
    "teacher": "teacher QA",
    "minilm": "MiniLM sentence embedding",
    "eng1000": "Eng1000-like co-occurrence (PPMI-SVD)",
    "word_rate": "word rate",
    "random": "random answers",
}
QUESTION_SPACES = ("student", "teacher")  # spaces whose ridge weights name questions (plotted)
MISSING_WINDOWS_FILE = "teacher_missing_windows.txt"


class BenchmarkConfigError(ValueError):
    """A benchmark config that cannot run (unknown subject or space, missing folder, ...)."""


@dataclass
class RealFmriBenchmarkConfig:
    data: str = ""  # TR-level data folder: stories.json, texts/, <subject>/<split>/<story>.npy
    subjects: tuple[str, ...] = ("UTS01", "UTS02")  # each is fitted and scored on its own
    spaces: tuple[str, ...] = tuple(SPACES)  # feature spaces to compare (keys of SPACES)
    checkpoint: str | None = None  # student checkpoint folder; None: the shipped default student
    teacher_answers: tuple[str, ...] = ()  # `qaemb-fast label` output folders (finished or not); () = no teacher
    minilm: str | None = None  # sentence-embedding model folder; None: the packaged all-MiniLM-L6-v2
    eng1000: str | None = None  # english1000sm.hf5: use the real Eng1000 instead of the PPMI-SVD look-alike
    cooccurrence_dims: int = 256  # PPMI-SVD dimensions of the look-alike (Eng1000 itself has 985)
    out: str | None = None  # write results.md, results.json and PNG plots here; None: write nothing
    seed: int = 0  # random answers, bootstrap resamples, and the training-story subset
    n_bootstrap: int = 2000  # bootstrap resamples for the 95 % intervals
    block_trs: int = 10  # TRs per bootstrap block (within a test story), to keep autocorrelated TRs together
    train_stories: int | None = None  # use only this many training stories (seeded subset) for quick runs
    context_words: int = 10  # words before each word in its window (paper: 10)
    delays: tuple[int, ...] = (1, 2, 3, 4)  # FIR delays in TRs
    alphas: tuple[float, ...] = VoxelEncoderConfig().alphas  # ridge alpha grid, one alpha chosen per PC
    n_folds: int = 5  # story-grouped CV folds for the alphas
    precision: str = "fp32"  # student precision: fp32 is exactly reproducible on every machine
    batch_size: int = 64  # texts per batch for the student and MiniLM
    n_plot_pcs: int = 3  # PCs whose top questions (by ridge weight) are plotted per question space
    progress: bool = True  # progress bars on feature extraction

    def __post_init__(self):
        self.subjects = (self.subjects,) if isinstance(self.subjects, str) else tuple(self.subjects)
        self.spaces = (self.spaces,) if isinstance(self.spaces, str) else tuple(self.spaces)
        ta = self.teacher_answers
        self.teacher_answers = () if not ta else (ta,) if isinstance(ta, (str, Path)) else tuple(ta)
        self.teacher_answers = tuple(str(p) for p in self.teacher_answers)
        self.delays, self.alphas = tuple(int(d) for d in self.delays), tuple(float(a) for a in self.alphas)


# ------------------------------------------------------------------------------------------------------------
# The block bootstrap (sufficient statistics per block: exact, and fast for thousands of resamples)


def block_bounds(lengths, block_trs: int) -> list[tuple[int, int]]:
    """[start, end) rows of consecutive blocks of `block_trs` TRs within each story (stories end to end, in order);
    a story's last block is shorter when its length is not a multiple."""
    if block_trs < 1:
        raise ValueError(f"block_trs must be >= 1, got {block_trs}")
    bounds, start = [], 0
    for n in lengths:
        bounds += [(start + b, start + min(b + block_trs, n)) for b in range(0, n, block_trs)]
        start += n
    return bounds


def block_bootstrap_r(y, preds: dict, lengths, block_trs: int = 10, n_bootstrap: int = 2000, seed: int = 0) -> dict:
    """Pearson r per target on paired block-bootstrap resamples of the test TRs.

    y: (T, V) measured responses; preds: {name: (T, V)} predictions; lengths: TRs per test story (sum = T), so
    blocks never straddle two stories. Each resample draws as many blocks as there are, with replacement, and is
    shared by all spaces. -> {name: (n_bootstrap, V) float64}. Equals `pearson_r` on the concatenated rows of the
    drawn blocks (checked in the tests), computed from per-block sums instead.
    """
    y = np.asarray(y, dtype=np.float64)
    if sum(lengths) != len(y):
        raise ValueError(f"lengths sum to {sum(lengths)} but y has {len(y)} rows")
    bounds = block_bounds(lengths, block_trs)

    def sums(x):  # (n_blocks, V): per-block sum of x
        return np.stack([x[a:b].sum(0) for a, b in bounds])

    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(bounds), size=(n_bootstrap, len(bounds)))
    counts = np.stack([np.bincount(d, minlength=len(bounds)) for d in draws]).astype(np.float64)  # (B, n_blocks)
    n = counts @ np.array([b - a for a, b in bounds], dtype=np.float64)  # (B,) rows per resample
    sy, syy = counts @ sums(y), counts @ sums(y * y)
    out = {}
    for name, p in preds.items():
        p = np.asarray(p, dtype=np.float64)
        sp, spp, syp = counts @ sums(p), counts @ sums(p * p), counts @ sums(y * p)
        cov = syp - sy * sp / n[:, None]
        var = (syy - sy**2 / n[:, None]) * (spp - sp**2 / n[:, None])
        out[name] = np.divide(cov, np.sqrt(np.clip(var, 0, None)), out=np.zeros_like(cov), where=var > 0)
    return out


def interval(samples, level: float = 0.95) -> list[float]:
    """[low, high] percentile interval of 1-D bootstrap samples."""
    lo = (1 - level) / 2 * 100
    return [float(v) for v in np.percentile(samples, [lo, 100 - lo])]


def compare_spaces(y, preds: dict, lengths, reference: str | None, n_top: int = 10, **bootstrap) -> dict:
    """Point estimates and bootstrap intervals for every space, and reference minus every other space.

    -> {name: {"r": (V,) list, "mean_r", "mean_r_ci", "mean_r_top", "mean_r_top_ci",
    and, when reference is given: "diff", "diff_ci", "diff_top", "diff_top_ci"}} (top = the first n_top targets).
    """
    r = {k: pearson_r(np.asarray(y, np.float64), np.asarray(p, np.float64)) for k, p in preds.items()}
    boot = block_bootstrap_r(y, preds, lengths, **bootstrap)
    out = {}
    for k in preds:
        row = dict(
            r=r[k].tolist(),
            mean_r=float(r[k].mean()),
            mean_r_ci=interval(boot[k].mean(1)),
            mean_r_top=float(r[k][:n_top].mean()),
            mean_r_top_ci=interval(boot[k][:, :n_top].mean(1)),
        )
        if reference is not None and reference in preds and k != reference:
            row["diff"] = float(r[reference].mean() - r[k].mean())
            row["diff_ci"] = interval(boot[reference].mean(1) - boot[k].mean(1))
            row["diff_top"] = float(r[reference][:n_top].mean() - r[k][:n_top].mean())
            row["diff_top_ci"] = interval(boot[reference][:, :n_top].mean(1) - boot[k][:, :n_top].mean(1))
        out[k] = row
    return out


# ------------------------------------------------------------------------------------------------------------
# Feature spaces


class SentenceEmbeddingAnswers:
    """A sentence embedder behind the encoder protocol (`.questions` = dimension names), so that
    `ContextWindowAnswers` embeds each word's window and caches it like any answerer."""

    def __init__(self, embedder, prefix: str = "minilm"):
        self.embedder = embedder
        self.questions = [f"{prefix} {i}" for i in range(embedder.dim)]

    def encode(self, texts, batch_size: int = 32, show_progress_bar=None, **_):
        return self.embedder.encode(list(texts), batch_size=batch_size, show_progress_bar=bool(show_progress_bar))


def read_teacher_answers(folders) -> AnswerTable:
    """One text -> answers table over one or more `qaemb-fast label` folders, finished or not
    (`distill.label.answers_by_text` on each). All folders must come from one teacher and one question set."""
    from distill.label import answers_by_text

    tables = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise BenchmarkConfigError(f"teacher answers folder not found: {folder}")
        tables.append(answers_by_text(folder))
    first = tables[0]
    for folder, table in zip(folders[1:], tables[1:]):
        if table.questions != first.questions or table.name != first.name:
            raise BenchmarkConfigError(
                f"{folder}: another teacher or other questions than {folders[0]}; answers of one setup only"
            )
    if len(tables) == 1:
        return first
    texts = [t for table in tables for t in table]  # AnswerTable keeps the first row of a repeated text
    return AnswerTable(texts, [table[t] for table in tables for t in table], first.questions, name=first.name)


def training_story_subset(names, n: int | None, seed: int) -> list[str]:
    """n stories from `names`, ranked by a seeded hash of the story name: the same story keeps its rank in every
    subject's list, so subjects with overlapping story lists get (nearly) the same subset. None: all, in order."""
    if n is None or n >= len(names):
        return list(names)
    rank = sorted(names, key=lambda s: hashlib.blake2b(f"{seed}:{s}".encode(), digest_size=8).digest())
    keep = set(rank[:n])
    return [s for s in names if s in keep]


def _log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def build_spaces(
    cfg: RealFmriBenchmarkConfig, windows, train_words, notes, student=None, sentence_embedder=None, log=_log
):
    """{name: feature source} for the config's spaces, with every window's answers computed (and cached) once.

    windows: every context window of every story in the run; train_words: the training stories' words (the only
    story text the co-occurrence space may see). student / sentence_embedder: objects to use instead of loading
    cfg.checkpoint / cfg.minilm. Spaces that cannot run are left out with a line in `notes`.
    """
    spaces, seconds = {}, {}
    if student is None and ("student" in cfg.spaces or "random" in cfg.spaces):
        from qaemb_fast.embedder import QAEmbedder

        student = QAEmbedder.from_pretrained(cfg.checkpoint, precision=cfg.precision)
    for name in cfg.spaces:
        t0 = time.time()
        if name == "student":
            src = ContextWindowAnswers(student, cfg.context_words, cfg.batch_size, cfg.progress)
        elif name == "teacher":
            if not cfg.teacher_answers:
                notes.append("teacher QA: not run (no teacher_answers folder given).")
                continue
            table = read_teacher_answers(cfg.teacher_answers)
            missing = sorted({w for w in windows if w not in table})
            if missing:
                where = "set `out` to write them to a file"
                if cfg.out:
                    path = Path(cfg.out) / MISSING_WINDOWS_FILE
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text("\n".join(missing) + "\n")
                    where = (
                        f"they are in {path}: label them with `qaemb-fast label --corpus {path} --out NEW_DIR` "
                        "(same --teacher, --questions and --prompt) and add NEW_DIR to teacher_answers"
                    )
                notes.append(
                    f"teacher QA: skipped, {len(missing)} of {len(set(windows))} windows have no teacher answers "
                    f"({table.name}); {where}."
                )
                continue
            src = ContextWindowAnswers(table, cfg.context_words)
        elif name == "minilm":
            if sentence_embedder is None:
                from qaemb_fast.sentence_embedding import SentenceEmbedder

                sentence_embedder = SentenceEmbedder(cfg.minilm)
            embedder = SentenceEmbeddingAnswers(sentence_embedder)
            src = ContextWindowAnswers(embedder, cfg.context_words, cfg.batch_size, cfg.progress)
        elif name == "eng1000":
            if cfg.eng1000:
                from qaemb_fast.voxels.ds003020 import load_eng1000

                src = load_eng1000(cfg.eng1000)
            else:
                from distill.corpus import wordnet_examples

                sentences = [" ".join(w) for w in train_words] + [it.text for it in wordnet_examples()]
                src = cooccurrence_embedding(sentences, n_dims=cfg.cooccurrence_dims)
        elif name == "word_rate":
            src = WordRate()
        elif name == "random":
            src = ContextWindowAnswers(RandomAnswers(student.questions, seed=cfg.seed), cfg.context_words)
        if isinstance(src, ContextWindowAnswers):
            log(f"{SPACES[name]}: answering {len(set(windows))} unique windows")
            src.answer(windows)  # fills the cache once for every subject
        spaces[name], seconds[name] = src, time.time() - t0
        log(f"{SPACES[name]}: {len(src.feature_names)} features ready in {seconds[name]:.1f} s")
    return spaces, seconds


# ------------------------------------------------------------------------------------------------------------
# The benchmark


def run_real_fmri_benchmark(config: RealFmriBenchmarkConfig, student=None, sentence_embedder=None, log=_log) -> dict:
    """Fit every space on each subject's training stories, score on its test stories, compare (module docstring).

    student / sentence_embedder: encoders to use instead of loading config.checkpoint / config.minilm (tests,
    notebooks): anything with `.questions` + `encode(texts, batch_size=, show_progress_bar=)`, resp. `.dim` + `encode`.

    -> {"config", "subjects": {subject: {"train_stories", "test_stories", "n_train_trs", "n_test_trs",
    "rows": [per-space dicts: space, label, n_features, mean_r, mean_r_ci, mean_r_top, ..., diff, diff_ci, ...]}},
    "notes": [str], "feature_seconds": {space: s}, "n_windows", "seconds", "models": {subject: {space:
    VoxelEncoder}}}. "models" is left out of results.json. Writes results.md/json and plots when config.out is set.
    """
    cfg = config
    t_start = time.time()
    root = Path(cfg.data)
    if not cfg.data or not root.is_dir():
        raise BenchmarkConfigError(f"data folder not found: {cfg.data!r} (the TR-level folder with stories.json)")
    unknown = [s for s in cfg.spaces if s not in SPACES]
    if unknown or not cfg.spaces:
        raise BenchmarkConfigError(f"unknown feature space(s) {unknown}; choose from {', '.join(SPACES)}")
    have = list_subjects(root)
    missing = [s for s in cfg.subjects if s not in have]
    if missing or not cfg.subjects:
        raise BenchmarkConfigError(f"subject(s) {missing} not in {root / 'stories.json'}; there: {', '.join(have)}")

    # Stories per subject; the test stories of every subject are kept out of anything fitted (co-occurrence too).
    design = {}
    for subj in cfg.subjects:
        train = training_story_subset(list_trlevel_stories(root, subj, "train"), cfg.train_stories, cfg.seed)
        design[subj] = (train, list_trlevel_stories(root, subj, "test"))
    test_all = {s for _, test in design.values() for s in test}
    leak = sorted({s for train, _ in design.values() for s in train} & test_all)
    if leak:
        raise BenchmarkConfigError(f"stories {leak} are test stories for one subject and training for another")
    names = sorted({s for train, test in design.values() for s in train + test})
    stories = dict(zip(names, load_trlevel_stories(root, names)))
    windows = sorted({w for s in stories.values() for w in context_windows(s.words, cfg.context_words)})
    log(
        f"{len(names)} stories, {sum(len(s.words) for s in stories.values())} words, "
        f"{len(windows)} unique {cfg.context_words + 1}-word windows"
    )

    notes: list[str] = []
    train_words = [stories[s].words for s in names if s not in test_all]
    spaces, feature_seconds = build_spaces(cfg, windows, train_words, notes, student, sentence_embedder, log)
    reference = "student" if "student" in spaces else None

    result = dict(config=asdict(cfg), subjects={}, notes=notes, feature_seconds=feature_seconds)
    result.update(n_windows=len(windows), models={})
    for subj, (train, test) in design.items():
        tr_st, te_st = [stories[s] for s in train], [stories[s] for s in test]
        y_tr = load_trlevel_responses(root, subj, train, "train", n_trs=[s.n_trs for s in tr_st])
        y_te = load_trlevel_responses(root, subj, test, "test", n_trs=[s.n_trs for s in te_st])
        preds, models, fit_seconds = {}, {}, {}
        for name, src in spaces.items():
            t0 = time.time()
            enc_cfg = VoxelEncoderConfig(
                features=trlevel_feature_config(context_words=cfg.context_words, delays=cfg.delays),
                alphas=cfg.alphas,
                n_folds=cfg.n_folds,
            )
            enc = VoxelEncoder(src, enc_cfg).fit(tr_st, y_tr)
            preds[name], models[name] = np.concatenate(enc.predict(te_st)), enc
            fit_seconds[name] = time.time() - t0
        # The encoder z-scores responses per story before fitting and scoring; so do we, to score its predictions.
        y = np.concatenate([zscore(a) for a in y_te])
        stats = compare_spaces(
            y, preds, [len(a) for a in y_te], reference, n_bootstrap=cfg.n_bootstrap, block_trs=cfg.block_trs,
            seed=cfg.seed,
        )  # fmt: skip
        rows = []
        for name in spaces:
            row = dict(space=name, label=SPACES[name], n_features=len(models[name].feature_names_), **stats[name])
            row["fit_seconds"] = fit_seconds[name]
            rows.append(row)
            log(f"{subj} {SPACES[name]}: mean r {row['mean_r']:.4f}, PCs 1-10 {row['mean_r_top']:.4f}")
        result["subjects"][subj] = dict(
            n_folds=min(cfg.n_folds, len(train)),
            train_stories=train,
            test_stories=test,
            n_train_trs=int(sum(len(a) for a in y_tr)),
            n_test_trs=int(len(y)),
            rows=rows,
        )
        result["models"][subj] = models
    result["seconds"] = time.time() - t_start
    if cfg.out:
        write_results(result, cfg.out)
        log(f"wrote {cfg.out}/results.md, results.json and plots")
    return result


# ------------------------------------------------------------------------------------------------------------
# Outputs


def results_markdown(result: dict) -> str:
    """The results as a markdown table (one row per subject and space) with the design underneath."""
    cfg = result["config"]

    def ci(x, lo_hi, signed=False):
        f = "{:+.3f}" if signed else "{:.3f}"
        return f"{f.format(x)} [{f.format(lo_hi[0])}, {f.format(lo_hi[1])}]"

    lines = [
        "| subject | feature space | features | mean r, all PCs [95 % CI] | mean r, PCs 1-10 [95 % CI] | "
        "student − space, all PCs [95 % CI] | student − space, PCs 1-10 [95 % CI] |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for subj, res in result["subjects"].items():
        for row in res["rows"]:
            d = ci(row["diff"], row["diff_ci"], True) if "diff" in row else "–"
            d10 = ci(row["diff_top"], row["diff_top_ci"], True) if "diff_top" in row else "–"
            lines.append(
                f"| {subj} | {row['label']} | {row['n_features']} | {ci(row['mean_r'], row['mean_r_ci'])} | "
                f"{ci(row['mean_r_top'], row['mean_r_top_ci'])} | {d} | {d10} |"
            )
    lines.append("")
    for subj, res in result["subjects"].items():
        n_pcs = len(res["rows"][0]["r"])
        lines.append(
            f"- {subj}: {len(res['train_stories'])} training stories ({res['n_train_trs']} TRs, alphas by "
            f"{res['n_folds']}-fold CV over them), {n_pcs} response PCs, test stories "
            f"{', '.join(res['test_stories'])} ({res['n_test_trs']} TRs)."
        )
    subset = f"a seeded subset of {cfg['train_stories']} " if cfg.get("train_stories") else "all "
    lines.append(
        f"- Fitted on {subset}training stories: each word's {cfg['context_words'] + 1}-word window, Lanczos to TRs, "
        f"z-scored per story, FIR delays {list(cfg['delays'])} TRs, ridge with one alpha per PC chosen by "
        "cross-validation over whole training stories (VoxelEncoder: himalaya's estimator, computed coefficients-first "
        "for few targets). 95 % CI: paired bootstrap over test TRs, blocks of "
        f"{cfg['block_trs']} consecutive TRs within each test story, {cfg['n_bootstrap']} resamples."
    )
    lines += [f"- {n}" for n in result.get("notes", [])]
    return "\n".join(lines)


def plot_r_per_pc(rows, path, title: str):
    """Test r for each PC (x: PC number, in the order of variance explained), one line per feature space."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=120)
    for row in rows:
        r = np.asarray(row["r"])
        ax.plot(np.arange(1, len(r) + 1), r, linewidth=1.1, alpha=0.85, label=f"{row['label']} (mean {r.mean():.3f})")
    ax.axhline(0, color="0.5", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_xlabel("response PC (log scale; PC 1 explains the most variance)")
    ax.set_ylabel("test Pearson r")
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def write_results(result: dict, out) -> Path:
    """results.md, results.json (no fitted models), r_per_pc_<subject>.png, and for question spaces
    top_questions_<subject>_<space>_pc<k>.png for the first `n_plot_pcs` PCs."""
    from qaemb_fast.voxels.plots import plot_question_weights

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(results_markdown(result) + "\n")
    (out / "results.json").write_text(
        json.dumps({k: v for k, v in result.items() if k != "models"}, indent=1, ensure_ascii=False) + "\n"
    )
    for subj, res in result["subjects"].items():
        plot_r_per_pc(res["rows"], out / f"r_per_pc_{subj}.png", f"{subj}: test r per response PC")
        rows = {row["space"]: row for row in res["rows"]}
        for name, enc in result.get("models", {}).get(subj, {}).items():
            if name not in QUESTION_SPACES:
                continue
            for pc in range(min(result["config"]["n_plot_pcs"], enc.n_voxels_)):
                title = f"{subj} {SPACES[name]}: PC {pc + 1} (test r {rows[name]['r'][pc]:.3f})"
                plot_question_weights(enc, pc, out / f"top_questions_{subj}_{name}_pc{pc + 1}.png", title=title)
    return out


__all__ = [
    "SPACES",
    "BenchmarkConfigError",
    "RealFmriBenchmarkConfig",
    "SentenceEmbeddingAnswers",
    "block_bootstrap_r",
    "block_bounds",
    "compare_spaces",
    "read_teacher_answers",
    "results_markdown",
    "run_real_fmri_benchmark",
    "training_story_subset",
    "write_results",
]
