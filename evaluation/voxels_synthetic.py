"""Synthetic voxel benchmark with planted truth: does a feature space recover what drives each voxel?

No fMRI data can be had offline, so we build data the same way the real data are built:
- stories: real English sentences (WordNet's 48k example sentences), ~2.5 words/s with pauses between
  sentences, TRs of 2 s on the ds003020 clock (the first TRs precede the sound, as in the real scans);
- voxels: each responds to the answers of a few questions (the *teacher's* answers on each word's 10-word
  context window) plus word rate, every word an impulse convolved with the SPM canonical HRF; a share of voxels
  is pure noise; noise is AR(1) (rho 0.3), at a per-voxel SNR drawn so that true-feature test r is ~0.1 on
  average and 0.5-0.7 on the top 1 % of voxels, as on real data.

Feature spaces are then fitted with the real pipeline (`VoxelEncoder`) on training stories and scored on
held-out stories. Reported per space: mean test r, mean r of the top 1 % voxels, fraction of voxels with
r > 0, and for question spaces the precision@k with which `question_weights` recovers each signal voxel's
planted questions (k = number planted; chance = k / Q).

`KeywordEncoder` is a transparent stand-in teacher/student (keyword matching, no model) so the benchmark runs
in a minute without an LLM; pass the real teacher/student encoders to `run_benchmark` (or `--teacher-answers`
/ `--student` on the command line) to measure them instead.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qaemb_fast.voxels.ds003020 import simulated_tr_times
from qaemb_fast.voxels.encoder import VoxelEncoder, VoxelEncoderConfig, pearson_r
from qaemb_fast.voxels.features import (
    ContextWindowAnswers,
    FeatureConfig,
    Story,
    WordEmbedding,
    WordRate,
)

# ------------------------------------------------------------------------------------------------------------
# Text


def wordnet_sentences(path=None) -> list[str]:
    """The example sentences quoted in WordNet's glosses (`"..."` after the definition), ~48k, in file order.

    path: the folder holding data.noun/verb/adj/adv; default: where `qaemb-fast corpus fetch` finds or puts
    WordNet (/usr/share/wordnet, or the corpus cache), fetched on first use like every offline corpus.
    Unlike `distill.corpus.wordnet_examples` (the labelling corpus), repeats are kept: the benchmark's stories
    were built from this list.
    """
    if path is None:
        from distill.corpus import OFFLINE_PACKAGES, offline_corpus_root

        path = offline_corpus_root("wordnet") / Path(OFFLINE_PACKAGES["wordnet"][1]).parent
    path = Path(path)
    files = [path / f"data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
    if not all(f.exists() for f in files):
        raise FileNotFoundError(
            f"WordNet data files not found under {path}; run `qaemb-fast corpus fetch`, or pass sentences from "
            "another corpus"
        )
    out = []
    for f in files:
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or " | " not in line:  # licence header
                continue
            out.extend(s.strip() for s in re.findall(r'"([^"]+)"', line.split(" | ", 1)[1]) if s.strip())
    return out


def tokenize(sentence: str) -> list[str]:
    """Lower-case words without punctuation, the way TextGrid word tiers spell them ("don't" stays whole)."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", sentence.lower())


def make_stories(
    sentences, n_stories: int, story_seconds: float, tr: float = 2.0, seed: int = 0, words_per_second: float = 2.5
) -> list[Story]:
    """Stories of consecutive (shuffled) sentences with plausible word timing, on the ds003020 TR clock.

    Word durations grow with word length and are jittered; sentences are separated by 0.3-0.9 s pauses;
    the durations are scaled so the story averages `words_per_second` including pauses. TR times follow
    `simulated_tr_times`: the scan starts 10 s before the sound and runs ~10 s past its end.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sentences))
    toks = [tokenize(sentences[i]) for i in order]
    toks = [t for t in toks if t]
    stories, pos = [], 0
    for k in range(n_stories):
        words, sent_len = [], []
        target = story_seconds * words_per_second
        while len(words) < target:
            if pos >= len(toks):
                raise ValueError(f"not enough sentences for {n_stories} stories of {story_seconds} s")
            words.extend(toks[pos])
            sent_len.append(len(toks[pos]))
            pos += 1
        dur = (0.18 + 0.03 * np.array([len(w) for w in words])) * rng.lognormal(0, 0.15, len(words))
        pauses = rng.uniform(0.3, 0.9, len(sent_len))
        dur *= (len(words) / words_per_second - pauses.sum()) / dur.sum()  # hit the target rate overall
        gaps = np.zeros(len(words))
        gaps[np.cumsum(sent_len)[:-1]] = pauses[:-1]  # a pause before each sentence but the first
        starts = np.cumsum(gaps + np.concatenate([[0.0], dur[:-1]])) + 0.5
        end = starts[-1] + dur[-1]
        n_total = int(np.ceil((end + 20.0) / tr)) + 5  # respdict-style count: pad + 10 s lead + ~10 s tail
        stories.append(Story(f"synthetic{k:02d}", words, starts + dur / 2, simulated_tr_times(n_total, tr)))
    return stories


# ------------------------------------------------------------------------------------------------------------
# Stand-in encoders (the encoder protocol: .questions, encode(texts, ...) -> (n, Q) float32)

# Questions from the default set, each with words whose presence in the window makes the answer "yes".
KEYWORD_QUESTIONS = {
    "Does the input mention food or eating?": "food eat eating ate eaten bread meat meal dinner lunch breakfast cake fruit apple soup cheese rice vegetables cook cooked cooking sugar egg eggs butter potatoes chicken hungry sandwich dish pie chocolate salad",
    "Does the input mention drinking or a beverage?": "drink drank drinking drunk wine beer coffee tea milk juice whiskey alcohol bottle glass cup thirsty",
    "Does the input mention a part of the body?": "hand hands head eye eyes face arm arms leg legs foot feet heart blood hair finger fingers mouth nose ear ears skin shoulder knee teeth tooth neck body stomach lips bone bones brain",
    "Does the input mention an animal?": "dog dogs cat cats horse horses bird birds animal animals cow cows sheep pig pigs lion wolf fox mouse rat snake insect insects bee bees deer bear monkey rabbit duck goat",
    "Does the input mention a plant, tree or flower?": "tree trees flower flowers plant plants grass leaf leaves rose roses garden seed seeds roots bush weeds",
    "Does the input mention the sea, a river or other water?": "sea river lake ocean water waves shore beach stream swim swimming pool bay coast",
    "Does the input mention a time of day or a date?": "morning evening night noon midnight afternoon tonight today yesterday tomorrow dawn dusk monday tuesday wednesday thursday friday saturday sunday january february march april june july august september october november december",
    "Does the input mention money, prices or wealth?": "money dollars dollar price prices cost costs paid pay rich wealth wealthy bank cash cents buy bought sell sold expensive cheap debt tax taxes profit income salary",
    "Does the input mention a vehicle or a means of transport?": "car cars bus train trains truck bicycle bike plane airplane taxi vehicle vehicles drove drive driving driver",
    "Does the input mention the weather?": "rain raining rained snow snowing wind windy storm storms sunny cloudy weather fog foggy thunder",
    "Does the input mention a building or a house?": "house houses building buildings home church castle tower hall palace office hotel apartment barn hut cottage roof",
    "Does the input mention clothing or something worn?": "coat dress shirt hat shoes boots jacket clothes wear wore wearing worn suit skirt trousers pants tie gloves cloak uniform scarf socks",
    "Does the input mention a family member or family relationship?": "mother father brother brothers sister sisters son sons daughter daughters wife husband family parents uncle aunt cousin grandmother grandfather mom dad",
    "Does the input mention marriage, courtship or romance?": "married marry marriage wedding bride groom kiss kissed romance romantic courtship divorce lover engaged",
    "Does the input describe a positive emotion such as joy or happiness?": "happy happiness joy glad delighted pleased cheerful enjoy enjoyed fun excited pleasure proud",
    "Does the input describe a negative emotion such as sadness or grief?": "sad sadness grief unhappy sorrow depressed miserable lonely despair mourning regret tears gloomy",
    "Does the input describe fear or anxiety?": "afraid fear feared scared frightened terror anxious anxiety worried worry nervous panic dread terrified",
    "Does the input mention music or singing?": "music song songs sing singing sang piano guitar violin band orchestra melody tune concert musical",
    "Does the input mention death or dying?": "death dead die died dying kill killed murder funeral grave corpse fatal",
    "Does the input mention illness, injury or health?": "sick ill illness disease pain hospital doctor injury injured wound fever cancer medicine patient health healthy cure",
    "Does the input mention the law, crime or punishment?": "law laws crime criminal police court judge prison jail arrest arrested guilty steal stole stolen thief illegal lawyer punishment punished",
    "Does the input mention government, politics or war?": "government war army soldiers soldier president political politics election vote battle congress senate military enemy minister",
    "Does the input mention education, school or learning?": "school student students teacher teachers learn learning learned study studied university college lesson lessons education exam taught",
    "Does the input mention religion, God or the church?": "god church religion religious pray prayer prayers priest heaven holy bible sin faith spiritual",
    "Does the input mention the sky, the sun, the moon or stars?": "sky sun moon star stars sunlight planet planets sunset sunrise",
    "Does the input mention speaking or talking?": "said say says speak spoke talk talked talking told tell asked ask shouted whisper whispered voice",
    "Does the input mention a colour?": "red blue green yellow black white brown gray grey pink purple orange color colour colors",
    "Does the input mention a game, sport or leisure activity?": "game games ball football tennis team sport sports golf baseball chess cards basketball soccer",
}


def _text_rng(text: str, salt: str) -> np.random.Generator:
    """A generator seeded by the text: the same window always gets the same noise, whatever the batch."""
    return np.random.default_rng(int.from_bytes(hashlib.blake2b((salt + text).encode(), digest_size=8).digest()))


class KeywordEncoder:
    """Stand-in encoder: P(yes) = 0.95 if the window contains one of the question's keywords, else 0.05.

    miss: share of each keyword list this encoder does not know (a weaker student misses cases);
    noise: sd of Gaussian noise added per (window, question), clipped to [0, 1].
    """

    def __init__(self, keywords: dict[str, str] = KEYWORD_QUESTIONS, miss: float = 0.0, noise: float = 0.0, seed=0):
        self.questions = list(keywords)
        rng = np.random.default_rng(seed)
        self._kw = []
        for q in self.questions:
            kws = sorted(set(keywords[q].split()))
            keep = rng.random(len(kws)) >= miss
            self._kw.append(frozenset(w for w, k in zip(kws, keep) if k))
        self.noise, self.salt = noise, f"kw{seed}:"

    def encode(self, texts, batch_size=32, show_progress_bar=None, output="prob", questions=None):
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if not texts:
            raise ValueError("encode: empty input")
        out = np.full((len(texts), len(self.questions)), 0.05, dtype=np.float32)
        for i, t in enumerate(texts):
            toks = set(tokenize(t))
            for j, kws in enumerate(self._kw):
                if toks & kws:
                    out[i, j] = 0.95
            if self.noise:
                out[i] += _text_rng(t, self.salt).normal(0, self.noise, len(self.questions))
        out = np.clip(out, 0, 1)
        if output == "binary":
            out = (out > 0.5).astype(np.float32)
        if questions is not None:
            idx = [q if isinstance(q, int) else self.questions.index(q) for q in questions]
            out = out[:, idx]
        return out[0] if single else out


class RandomAnswers:
    """Null baseline: the same questions answered at random (yes with probability `rate`), fixed per window."""

    def __init__(self, questions, rate: float = 0.2, seed: int = 0):
        self.questions, self.rate, self.salt = list(questions), rate, f"random{seed}:"

    def encode(self, texts, batch_size=32, show_progress_bar=None, output="prob", questions=None):
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        out = np.stack([(_text_rng(t, self.salt).random(len(self.questions)) < self.rate) for t in texts])
        out = out.astype(np.float32)
        return out[0] if single else out


def cooccurrence_embedding(sentences, n_dims: int = 256, n_basis: int = 985, window: int = 5, min_count: int = 2):
    """Eng1000-like word vectors: co-occurrence counts with the `n_basis` most frequent words (±`window`
    words, within a sentence) -> positive PMI -> truncated SVD to `n_dims`. -> WordEmbedding."""
    from collections import Counter

    from scipy.sparse import coo_matrix
    from sklearn.decomposition import TruncatedSVD

    toks = [tokenize(s) for s in sentences]
    counts = Counter(w for t in toks for w in t)
    vocab = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    index = {w: i for i, w in enumerate(vocab)}
    basis = {w: i for i, w in enumerate(vocab[:n_basis])}
    rows, cols = [], []
    for t in toks:
        for i, w in enumerate(t):
            if w not in index:
                continue
            for c in t[max(0, i - window) : i] + t[i + 1 : i + 1 + window]:
                if c in basis:
                    rows.append(index[w])
                    cols.append(basis[c])
    m = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(vocab), len(basis))).tocsr()
    m.sum_duplicates()
    total = m.sum()
    pw = np.asarray(m.sum(1)).ravel() / total
    pc = np.asarray(m.sum(0)).ravel() / total
    m = m.tocoo()
    pmi = np.log(m.data / total / (pw[m.row] * pc[m.col]))
    keep = pmi > 0
    ppmi = coo_matrix((pmi[keep], (m.row[keep], m.col[keep])), shape=m.shape).tocsr()
    n_dims = min(n_dims, len(basis) - 1)
    vecs = TruncatedSVD(n_components=n_dims, random_state=0).fit_transform(ppmi)
    return WordEmbedding(dict(zip(vocab, vecs)), names=[f"svd {i}" for i in range(n_dims)])


# ------------------------------------------------------------------------------------------------------------
# Planted voxels


def spm_hrf(t: np.ndarray) -> np.ndarray:
    """SPM canonical double-gamma HRF (peak ~5 s, undershoot ~15 s), t in seconds, 0 for t < 0."""
    from scipy.stats import gamma

    return gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6.0


@dataclass
class SyntheticConfig:
    n_stories: int = 12  # stories in all (the last n_test are held out)
    n_test: int = 3  # held-out stories for scoring; the rest train (alphas by CV over them)
    story_seconds: float = 420.0  # length of each story in seconds (~7 min; real ones are 10-15 min)
    tr: float = 2.0  # seconds per TR
    n_voxels: int = 2000  # synthetic voxels
    k_planted: int = 3  # questions planted per signal voxel
    null_share: float = 0.3  # voxels with no signal at all
    max_r: float = 0.75  # correlation of the best voxel's signal with its response
    snr_power: float = 2.5  # signal voxels' r ~ max_r * U^power: most voxels weak, a few strong
    rho: float = 0.3  # AR(1) noise autocorrelation
    seed: int = 0  # seed for stories, voxels and noise


def plant_voxels(stories, truth, cfg: SyntheticConfig, features: FeatureConfig):
    """Responses (one (n_TRs_kept, V) array per story) driven by `truth`'s answers through an HRF.

    Returns (responses, signals, planted, ceiling): signals = the noise-free responses, planted (V, k) indices
    of each voxel's questions (-1 rows for null voxels), ceiling (V,) = corr(signal, response) by design.
    """
    rng = np.random.default_rng(cfg.seed + 1)
    answers = ContextWindowAnswers(truth, context_words=features.context_words)
    q, v = len(answers.feature_names), cfg.n_voxels
    if cfg.k_planted > q:
        raise ValueError(f"k_planted={cfg.k_planted} but the truth encoder answers only {q} questions")
    planted = np.stack([rng.choice(q, cfg.k_planted, replace=False) for _ in range(v)])
    weights = np.zeros((q, v))
    weights[planted, np.arange(v)[:, None]] = rng.uniform(0.5, 1.5, planted.shape) * rng.choice(
        [1, -1], planted.shape, p=[0.8, 0.2]
    )
    rate_w = rng.uniform(0, 1.0, v)
    null = rng.random(v) < cfg.null_share
    planted[null] = -1
    ceiling = np.where(null, 0.0, cfg.max_r * rng.random(v) ** cfg.snr_power)

    clean = []
    for s in stories:
        a = answers.word_features(s).astype(np.float64)  # (n_words, Q)
        drive = a @ weights + rate_w  # each word is an impulse of this size, per voxel
        h = spm_hrf(s.tr_times[:, None] - s.word_times[None, :])  # (n_trs, n_words)
        clean.append((h @ drive)[features.trim_start : s.n_trs - features.trim_end])
    allc = np.concatenate(clean)
    mu, sd = allc.mean(0), allc.std(0) + 1e-12
    responses, signals = [], []
    for c in clean:
        sig = (c - mu) / sd
        e = rng.standard_normal(c.shape)
        for t in range(1, len(e)):  # AR(1), unit variance
            e[t] = cfg.rho * e[t - 1] + np.sqrt(1 - cfg.rho**2) * e[t]
        responses.append((ceiling * sig + np.sqrt(1 - ceiling**2) * e).astype(np.float32))
        signals.append(sig.astype(np.float32))
    return responses, signals, planted, ceiling


def precision_at_k(weights: np.ndarray, planted: np.ndarray) -> np.ndarray:
    """Per voxel: share of its k planted questions among its k largest |weights|. weights (Q, V), planted (V, k)."""
    k = planted.shape[1]
    top = np.argsort(-np.abs(weights), axis=0)[:k].T  # (V, k)
    return np.array([len(set(t) & set(p)) / k for t, p in zip(top, planted)])


# ------------------------------------------------------------------------------------------------------------
# The benchmark


def run_benchmark(spaces: dict, truth, sentences=None, cfg: SyntheticConfig | None = None, log=print) -> dict:
    """Fit and score each feature space on synthetic voxels planted from `truth`'s answers.

    spaces: {name: encoder or feature source}; truth: the encoder whose answers drive the voxels (the teacher).
    Returns {"rows": [per-space metrics], "ceiling": metrics of the noise-free signal, "config",
    "r": {name: (V,) test r}, "models": {name: fitted VoxelEncoder}, "planted": (V, k) question indices, ...}.
    """
    cfg = cfg or SyntheticConfig()
    fc = FeatureConfig()
    t0 = time.time()
    sentences = wordnet_sentences() if sentences is None else sentences
    stories = make_stories(sentences, cfg.n_stories, cfg.story_seconds, cfg.tr, cfg.seed)
    n_words = sum(len(s.words) for s in stories)
    duration = sum(s.word_times[-1] - s.word_times[0] for s in stories)
    log(f"{len(stories)} stories, {n_words} words ({n_words / duration:.2f} words/s), TR {cfg.tr} s")
    responses, signals, planted, ceiling = plant_voxels(stories, truth, cfg, fc)
    train, test = slice(0, cfg.n_stories - cfg.n_test), slice(cfg.n_stories - cfg.n_test, None)
    sig_test, resp_test = np.concatenate(signals[test]), np.concatenate(responses[test])
    r_ceiling = pearson_r(resp_test, sig_test)
    signal_vox = planted[:, 0] >= 0
    strong = signal_vox & (ceiling >= 0.3)
    log(
        f"planted {cfg.n_voxels} voxels ({signal_vox.sum()} with signal, {strong.sum()} strong) in {time.time() - t0:.1f} s"
    )

    rows, rs, models = [], {}, {}
    for name, src in spaces.items():
        t1 = time.time()
        enc = VoxelEncoder(src, VoxelEncoderConfig(features=fc))
        enc.fit(stories[train], responses[train])
        r = enc.score(stories[test], responses[test])
        rs[name], models[name] = r, enc
        row = dict(name=name, n_features=len(enc.feature_names_), **summarize(r))
        if list(enc.feature_names_) == list(truth.questions):  # question space: check the planted questions
            p = precision_at_k(enc.question_weights(), planted)
            row["p_at_k_signal"] = float(p[signal_vox].mean())
            row["p_at_k_strong"] = float(p[strong].mean()) if strong.any() else float("nan")
        row["seconds"] = time.time() - t1
        rows.append(row)
        log(f"  {name}: mean r {row['mean_r']:.3f}, top 1% {row['top1_r']:.3f} ({row['seconds']:.1f} s)")
    return dict(
        rows=rows,
        ceiling=dict(name="noise-free signal (ceiling)", **summarize(r_ceiling)),
        chance_p_at_k=cfg.k_planted / len(truth.questions),
        config=cfg,
        r=rs,
        models=models,
        planted=planted,
        ceiling_r=r_ceiling,
        n_words=n_words,
        words_per_second=n_words / duration,
    )


def summarize(r: np.ndarray) -> dict:
    top = np.sort(r)[::-1][: max(1, int(round(0.01 * len(r))))]
    return dict(mean_r=float(r.mean()), top1_r=float(top.mean()), frac_pos=float((r > 0).mean()))


def markdown_table(result: dict) -> str:
    """The benchmark result as a markdown table (one row per feature space, then the ceiling)."""

    def f(x, fmt="{:.3f}"):
        return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else fmt.format(x)

    head = (
        "| feature space | features | mean test r | top 1 % r | r > 0 | P@k signal voxels | P@k strong voxels |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for row in result["rows"] + [result["ceiling"]]:
        lines.append(
            f"| {row['name']} | {row.get('n_features', '–')} | {f(row['mean_r'])} | {f(row['top1_r'])} | "
            f"{f(row['frac_pos'], '{:.1%}')} | {f(row.get('p_at_k_signal'), '{:.2f}')} | "
            f"{f(row.get('p_at_k_strong'), '{:.2f}')} |"
        )
    cfg = result["config"]
    lines.append(
        f"\n{cfg.n_stories - cfg.n_test} training / {cfg.n_test} test stories, {result['n_words']} words "
        f"({result['words_per_second']:.2f} words/s), TR {cfg.tr} s, {cfg.n_voxels} voxels "
        f"({cfg.null_share:.0%} pure noise), {cfg.k_planted} planted questions per signal voxel; "
        f"P@k chance = {result['chance_p_at_k']:.2f}; strong = planted signal r >= 0.3."
    )
    return "\n".join(lines)


def default_spaces(teacher, student, sentences, teacher_label="teacher QA", student_label="student QA") -> dict:
    """The comparison the issue asks for: teacher, student, Eng1000-like, word rate, random answers."""
    return {
        teacher_label: teacher,
        student_label: student,
        "Eng1000-like co-occurrence (PPMI-SVD 256)": cooccurrence_embedding(sentences),
        "word rate": WordRate(),
        "random answers": RandomAnswers(teacher.questions),
    }


__all__ = [
    "KEYWORD_QUESTIONS",
    "KeywordEncoder",
    "RandomAnswers",
    "SyntheticConfig",
    "cooccurrence_embedding",
    "default_spaces",
    "make_stories",
    "markdown_table",
    "plant_voxels",
    "precision_at_k",
    "run_benchmark",
    "spm_hrf",
    "wordnet_sentences",
]
