"""Voxelwise encoding: hand-computed Lanczos/delays, planted-truth recovery, the ds003020 layout, errors, CLI."""

import json
import re

import h5py
import numpy as np
import pytest

# ------------------------------------------------------------------------------------------------------------
# A real (tiny) feature source: answers by keyword, deterministic.
from voxel_fixtures import FILLER, TOPICS, KeywordTestEncoder

from evaluation.voxels_synthetic import RandomAnswers, SyntheticConfig, plant_voxels, precision_at_k
from qaemb_fast.voxels import (
    AnswerTable,
    ContextWindowAnswers,
    FeatureConfig,
    Story,
    StoryError,
    VoxelDataError,
    VoxelEncoder,
    WordRate,
    load_ds003020,
)
from qaemb_fast.voxels.ds003020 import load_eng1000, read_textgrid, textgrid_words
from qaemb_fast.voxels.features import context_windows, lanczos_interp, lanczos_kernel, make_delayed, story_features


def make_story(name, n_words, rng, rate=2.5, tr=2.0, lead=10.0):
    topic_words = [w for ws in TOPICS.values() for w in ws]
    words = [rng.choice(topic_words) if rng.random() < 0.12 else rng.choice(FILLER) for _ in range(n_words)]
    times = lead + np.cumsum(rng.uniform(0.6, 1.4, n_words) / rate)
    n_trs = int(np.ceil((times[-1] + lead) / tr))
    return Story(name, words, times, np.arange(n_trs) * tr + tr / 2)


# ------------------------------------------------------------------------------------------------------------
# Hand-computed cases


def test_lanczos_kernel_hand_values():
    # cutoff 0.5 Hz (TR 2 s), 3 lobes: x = t / 2
    t = np.array([0.0, 1.0, -1.0, 2.0, 3.0, 6.0, 7.0])
    want = [1.0, 6 / np.pi**2, 6 / np.pi**2, 0.0, -4 / (3 * np.pi**2), 0.0, 0.0]
    np.testing.assert_allclose(lanczos_kernel(t, 0.5, 3), want, atol=1e-12)


def test_lanczos_interp_hand_case_and_word_rate():
    a, b = 6 / np.pi**2, -4 / (3 * np.pi**2)  # L(1 s), L(3 s) at cutoff 1/2 s
    got = lanczos_interp(np.array([[1.0], [2.0]]), [1.0, 3.0], [0.0, 2.0, 4.0])
    np.testing.assert_allclose(got[:, 0], [a + 2 * b, a + 2 * a, b + 2 * a], atol=1e-12)
    # Unnormalised weights: a column of ones (word rate) doubles where words are twice as dense.
    sparse = lanczos_interp(np.ones(20), np.arange(20) * 1.0, [10.0, 12.0])
    dense = lanczos_interp(np.ones(40), np.arange(40) * 0.5, [10.0, 12.0])
    np.testing.assert_allclose(dense, 2 * sparse, rtol=0.02)


def test_make_delayed_hand_case():
    x = np.array([[1, 10], [2, 20], [3, 30]])
    np.testing.assert_array_equal(make_delayed(x, (1, 2)), [[0, 0, 0, 0], [1, 10, 0, 0], [2, 20, 1, 10]])
    np.testing.assert_array_equal(make_delayed(x, (0, -1)), [[1, 10, 2, 20], [2, 20, 3, 30], [3, 30, 0, 0]])


def test_context_windows():
    assert context_windows(["a", "b", "c", "d", "e"], 2) == ["a", "a b", "a b c", "b c d", "c d e"]
    assert context_windows(["x"], 10) == ["x"]


def test_story_features_trim_zscore_delays():
    rng = np.random.default_rng(0)
    s = make_story("s", 150, rng)
    cfg = FeatureConfig(delays=(0,))
    x = story_features(WordRate(), s, cfg)
    assert x.shape == (s.n_trs - 15, 1)
    np.testing.assert_allclose([x.mean(), x.std()], [0, 1], atol=1e-5)
    # With delays 1..4 the blocks are the same z-scored series shifted down.
    x4 = story_features(WordRate(), s, FeatureConfig())
    assert x4.shape == (s.n_trs - 15, 4)
    np.testing.assert_allclose(x4[3:, 2], x[:-3, 0], atol=1e-6)


def test_windows_are_encoded_once():
    enc = KeywordTestEncoder()
    src = ContextWindowAnswers(enc, context_words=2)
    s = Story("rep", ["la"] * 20 + ["dog"], np.arange(21.0), np.arange(0, 40, 2.0))
    a = src.word_features(s)
    assert a.shape == (21, len(TOPICS))
    assert enc.n_encoded == 4  # "la", "la la", "la la la", "la la dog"
    src.word_features(s)
    assert enc.n_encoded == 4
    assert a[-1, 0] == 1.0 and a[:-1, 0].sum() == 0


# ------------------------------------------------------------------------------------------------------------
# Planted truth


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(1)
    stories = [make_story(f"s{i}", 500, rng) for i in range(7)]
    truth = KeywordTestEncoder()
    cfg = SyntheticConfig(n_voxels=60, k_planted=2, null_share=0.0, max_r=0.9, snr_power=0.3, seed=3)
    responses, _, planted_q, ceiling = plant_voxels(stories, truth, cfg, FeatureConfig())
    return stories, responses, planted_q, ceiling, truth


def test_fit_recovers_planted_questions_and_beats_random(planted):
    stories, responses, planted_q, ceiling, truth = planted
    enc = VoxelEncoder(truth, backend="numpy").fit(stories[:5], responses[:5])
    r = enc.score(stories[5:], responses[5:])
    w = enc.question_weights()
    assert w.shape == (len(TOPICS), 60) and r.shape == (60,)
    strong = ceiling > 0.5
    assert strong.sum() >= 10
    p = precision_at_k(w, planted_q)
    assert p[strong].mean() >= 0.85, p[strong]
    rand = VoxelEncoder(RandomAnswers(truth.questions, seed=5), backend="numpy").fit(stories[:5], responses[:5])
    r_rand = rand.score(stories[5:], responses[5:])
    assert r.mean() > r_rand.mean() + 0.1, (r.mean(), r_rand.mean())
    chance = precision_at_k(rand.question_weights(), planted_q)[strong].mean()
    assert chance < 0.7
    # top_questions names the planted questions of a strong voxel; a region averages voxels.
    v = int(np.flatnonzero(strong)[np.argmax(r[strong])])
    names = {q for q, _ in enc.top_questions(v, k=2)}
    assert names == {truth.questions[i] for i in planted_q[v]}
    region = enc.top_questions([v, v], k=3)
    assert region == enc.top_questions(v, k=3)


def test_coefficients_first_ridge_equals_himalaya(planted):
    """The few-targets solver is the same estimator as himalaya's RidgeCV: same alphas, same weights."""
    stories, responses, _, _, truth = planted
    fits = {
        solver: VoxelEncoder(truth, backend="numpy", solver=solver).fit(stories[:5], responses[:5])
        for solver in ("himalaya", "coefficients-first")
    }
    a, b = fits["himalaya"], fits["coefficients-first"]
    assert b.backend_.endswith("(coefficients-first)") and not a.backend_.endswith("(coefficients-first)")
    np.testing.assert_allclose(a.best_alphas_, b.best_alphas_, rtol=1e-6)  # the same grid value per voxel
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-3, atol=1e-4 * np.abs(a.coef_).max())
    np.testing.assert_allclose(a.cv_scores_, b.cv_scores_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(a.score(stories[5:], responses[5:]), b.score(stories[5:], responses[5:]), atol=1e-4)
    # "auto" takes the cheaper one: coefficients first for few features or targets; himalaya's order where there are
    # more features than rows, or more targets than one batch holds
    from qaemb_fast.voxels.encoder import pick_solver

    splits = [(np.arange(2000), np.arange(2000, 2500))]
    assert pick_solver("auto", 40, 60, splits) == "coefficients-first"
    assert pick_solver("auto", 5000, 15_000, splits) == "himalaya"
    assert pick_solver("auto", 40, 95_000, splits, max_targets=20_000) == "himalaya"
    assert pick_solver("auto", 40, 95_000, splits, max_targets=None) == "coefficients-first"


def test_save_load_roundtrip(planted, tmp_path):
    stories, responses, *_, truth = planted
    enc = VoxelEncoder(truth, delays=(1, 2)).fit(stories[:3], responses[:3])
    enc.save(tmp_path / "m")
    back = VoxelEncoder.load(tmp_path / "m", features=truth)
    np.testing.assert_array_equal(back.question_weights(), enc.question_weights())
    np.testing.assert_allclose(back.predict(stories[3:4])[0], enc.predict(stories[3:4])[0], rtol=1e-6)
    assert back.config.features.delays == (1, 2)
    assert VoxelEncoder.load(tmp_path / "m").top_questions(0, k=1) == enc.top_questions(0, k=1)


# ------------------------------------------------------------------------------------------------------------
# Errors


def test_story_errors():
    with pytest.raises(StoryError, match=r"increasing.*'b'"):
        Story("x", ["a", "b", "c"], [1.0, 3.0, 2.0], np.arange(10.0))
    with pytest.raises(StoryError, match="3 words but word_times"):
        Story("x", ["a", "b", "c"], [1.0, 2.0], np.arange(10.0))
    with pytest.raises(StoryError, match="no words"):
        Story("x", [], [], np.arange(10.0))
    with pytest.raises(StoryError, match="nothing after trimming"):
        story_features(WordRate(), Story("x", ["a"], [1.0], np.arange(0, 30, 2.0)), FeatureConfig())


def test_response_errors(planted):
    stories, responses, *_, truth = planted
    enc = VoxelEncoder(truth, backend="numpy")
    short = [responses[0][:-1], responses[1]]
    with pytest.raises(VoxelDataError, match=r"s0.*\d+ TRs but \d+ are expected.*first 10 and last 5"):
        enc.fit(stories[:2], short)
    nan = [responses[0].copy(), responses[1]]
    nan[0][4, 7] = np.nan
    with pytest.raises(VoxelDataError, match=r"NaN.*\[7\]"):
        enc.fit(stories[:2], nan)
    with pytest.raises(VoxelDataError, match="at least 2 stories"):
        enc.fit(stories[:1], responses[:1])
    with pytest.raises(VoxelDataError, match="2 stories but 1 response"):
        enc.fit(stories[:2], responses[:1])


def test_feature_source_mismatch(planted, tmp_path):
    stories, responses, *_, truth = planted
    enc = VoxelEncoder(truth, backend="numpy").fit(stories[:2], responses[:2])
    enc.save(tmp_path / "m")
    fewer = KeywordTestEncoder({k: v for k, v in list(TOPICS.items())[:5]})
    with pytest.raises(VoxelDataError, match="5 questions but the model was fitted on 6"):
        VoxelEncoder.load(tmp_path / "m", features=fewer)
    with pytest.raises(VoxelDataError, match="5 .*fitted on 6"):
        enc.features = ContextWindowAnswers(fewer)
        enc.predict(stories[2:3])
    reordered = KeywordTestEncoder(dict(reversed(list(TOPICS.items()))))
    with pytest.raises(VoxelDataError, match="same order"):
        VoxelEncoder.load(tmp_path / "m", features=reordered)
    with pytest.raises(TypeError, match="neither an encoder"):
        VoxelEncoder(object())


def test_answer_table_missing_text():
    table = AnswerTable(["a b", "c"], [[1.0], [0.0]], ["Is it?"])
    np.testing.assert_array_equal(table.encode(["c", "a b"]), [[0.0], [1.0]])
    with pytest.raises(KeyError, match="1 of 2 texts"):
        table.encode(["c", "zzz"])


# ------------------------------------------------------------------------------------------------------------
# ds003020 layout


def _long_textgrid(intervals, phones=(("0", "1", "AH"),)):
    def tier(name, rows, indent="    "):
        out = [f"{indent}item [{name[0]}]:", f'{indent}    class = "IntervalTier" ', f'{indent}    name = "{name[1]}" ']
        out += [
            f"{indent}    xmin = 0 ",
            f"{indent}    xmax = {rows[-1][1]} ",
            f"{indent}    intervals: size = {len(rows)} ",
        ]
        for i, (a, b, t) in enumerate(rows, 1):
            out += [f"{indent}    intervals [{i}]:", f"{indent}        xmin = {a} ", f"{indent}        xmax = {b} "]
            quoted = t.replace('"', '""')  # Praat doubles quotes inside strings
            out += [f'{indent}        text = "{quoted}" ']
        return out

    end = intervals[-1][1]
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0 ", f"xmax = {end} "]
    lines += ["tiers? <exists> ", "size = 2 ", "item []: "]
    lines += tier((1, "phone"), list(phones)) + tier((2, "word"), intervals)
    return "\n".join(lines) + "\n"


def _short_textgrid(intervals):
    end = intervals[-1][1]
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", str(end), "<exists>", "1"]
    lines += ['"IntervalTier"', '"word"', "0", str(end), str(len(intervals))]
    for a, b, t in intervals:
        lines += [str(a), str(b), '"' + t.replace('"', '""') + '"']
    return "\n".join(lines) + "\n"


def _intervals(n_words, rng, start=0.5):
    rows, t = [], start
    for i in range(n_words):
        if i % 7 == 0:
            rows.append((round(t, 3), round(t + 0.3, 3), "sp"))
            t += 0.3
        d = float(rng.uniform(0.25, 0.5))
        rows.append((round(t, 3), round(t + d, 3), ["The", "dog", "ATE", "{LG}", "bread"][i % 5]))
        t += d
    return [(0, start, "sentence_start")] + rows


@pytest.fixture
def ds_root(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "ds003020"
    (root / "derivative" / "TextGrids").mkdir(parents=True)
    (root / "derivative" / "preprocessed_data" / "UTS01").mkdir(parents=True)
    respdict, n_vox = {}, 7
    for i, (name, fmt) in enumerate([("alpha", _long_textgrid), ("beta", _short_textgrid), ("gamma", _long_textgrid)]):
        iv = _intervals(300 + 20 * i, rng)
        (root / "derivative" / "TextGrids" / f"{name}.TextGrid").write_text(fmt(iv))
        respdict[name] = int(np.ceil((iv[-1][1] + 10) / 2.0045)) + 15
        with h5py.File(root / "derivative" / "preprocessed_data" / "UTS01" / f"{name}.hf5", "w") as f:
            f["data"] = rng.standard_normal((respdict[name] - 20, n_vox)).astype(np.float32)
    (root / "derivative" / "respdict.json").write_text(json.dumps(respdict))
    return root


def test_textgrid_long_and_short_agree(tmp_path):
    iv = [(0, 0.5, "sp"), (0.5, 1.0, 'say "hi"'), (1.0, 1.4, "{NS}"), (1.4, 2.0, "Dog")]
    (tmp_path / "l.TextGrid").write_text(_long_textgrid(iv))
    (tmp_path / "s.TextGrid").write_text(_short_textgrid(iv))
    assert read_textgrid(tmp_path / "l.TextGrid")["word"] == read_textgrid(tmp_path / "s.TextGrid")["word"]
    words, times = textgrid_words(tmp_path / "s.TextGrid")
    assert words == ['say "hi"', "dog"]
    np.testing.assert_allclose(times, [0.75, 1.7])


def test_loader_reads_fixture(ds_root):
    stories, responses = load_ds003020(ds_root, "UTS01")
    assert [s.name for s in stories] == ["alpha", "beta", "gamma"]
    respdict = json.loads((ds_root / "derivative" / "respdict.json").read_text())
    a = stories[0]
    assert a.words[:5] == ["the", "dog", "ate", "bread", "the"]  # fillers dropped, lower-cased
    assert not {"sp", "{lg}", "sentence_start"} & set(a.words)
    grid = read_textgrid(ds_root / "derivative" / "TextGrids" / "alpha.TextGrid")["word"]
    first = next(r for r in grid if r[2] == "The")
    assert a.word_times[0] == pytest.approx((first[0] + first[1]) / 2)
    assert a.n_trs == respdict["alpha"] - 5
    np.testing.assert_allclose(a.tr_times[:2], [-10 + 2.0045 / 2, -10 + 1.5 * 2.0045])
    assert responses[1].shape == (respdict["beta"] - 20, 7)
    # The pipeline accepts the files as they are: response rows == TRs kept after trimming.
    enc = VoxelEncoder(WordRate(), backend="numpy").fit(stories[:2], responses[:2])
    assert enc.score(stories[2:], responses[2:]).shape == (7,)
    sub = load_ds003020(ds_root, "UTS01", ["beta"], voxels=[1, 3])[1][0]
    np.testing.assert_array_equal(sub, responses[1][:, [1, 3]])


def test_eng1000_loader(tmp_path):
    with h5py.File(tmp_path / "e.hf5", "w") as f:
        f["data"] = np.arange(6, dtype=np.float32).reshape(2, 3)  # (dims, words), as english1000sm.hf5
        f["vocab"] = np.array([b"dog", b"cat", b"rain"])
    emb = load_eng1000(tmp_path / "e.hf5")
    s = Story("s", ["Cat", "zebra"], [1.0, 2.0], np.arange(0, 40, 2.0))
    np.testing.assert_array_equal(emb.word_features(s), [[1, 4], [0, 0]])


# ------------------------------------------------------------------------------------------------------------
# CLI and plots


def test_cli_fit_score_top_questions(ds_root, tmp_path, capsys):
    from qaemb_cli.main import main

    model, r_path, png = tmp_path / "model", tmp_path / "r.npy", tmp_path / "r.png"
    data = ["--data", str(ds_root), "--subject", "UTS01"]
    assert main(["voxels", "fit", *data, "--stories", "alpha", "beta", "--word-rate", "--out", str(model)]) == 0
    args = ["voxels", "score", *data, "--stories", "gamma", "--word-rate", "--model", str(model)]
    assert main([*args, "--out", str(r_path), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    r = np.load(r_path)
    assert r.shape == (7,) and f"mean r {r.mean():.4f}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bars = tmp_path / "w.png"
    assert (
        main(["voxels", "top-questions", "--model", str(model), "--best", "3", "--r", str(r_path), "--plot", str(bars)])
        == 0
    )
    assert re.search(r"[+-]\d\.\d{3}  word rate", capsys.readouterr().out)
    assert bars.stat().st_size > 1000
    assert main(["voxels", "fit", *data, "--out", str(model)]) == 2
    assert "error: give exactly one feature source" in capsys.readouterr().err


def test_run_benchmark_small():
    from evaluation.voxels_synthetic import markdown_table, run_benchmark

    rng = np.random.default_rng(2)
    topic_words = [w for ws in TOPICS.values() for w in ws]
    sentences = [
        " ".join(rng.choice(topic_words) if rng.random() < 0.15 else rng.choice(FILLER) for _ in range(8)) + "."
        for _ in range(600)
    ]
    truth = KeywordTestEncoder()
    cfg = SyntheticConfig(n_stories=5, n_test=2, story_seconds=150, n_voxels=80, k_planted=2, seed=1)
    spaces = {"teacher": truth, "word rate": WordRate(), "random": RandomAnswers(truth.questions)}
    res = run_benchmark(spaces, truth, sentences, cfg, log=lambda m: None)
    rows = {r["name"]: r for r in res["rows"]}
    assert set(rows) == set(spaces)
    assert rows["teacher"]["mean_r"] > rows["random"]["mean_r"]
    assert rows["teacher"]["p_at_k_strong"] > rows["random"]["p_at_k_strong"]
    assert "p_at_k_signal" not in rows["word rate"]
    assert 2.2 < res["words_per_second"] < 2.8
    table = markdown_table(res)
    assert table.count("\n| ") == 4 and "| word rate | 1 |" in table


@pytest.fixture(scope="module")
def wordnet():
    """WordNet where `qaemb-fast corpus fetch` finds or puts it (/usr/share/wordnet or the corpus cache), fetched
    like every offline corpus; skipped only where that fetch cannot work (no apt, no network)."""
    from distill.corpus import CorpusError, fetch_offline_corpora

    try:
        return fetch_offline_corpora(names=["wordnet"], quiet=True)["wordnet"]
    except (CorpusError, OSError) as e:
        pytest.skip(f"WordNet cannot be fetched here (run `qaemb-fast corpus fetch`): {e}")


def test_wordnet_sentences_found_where_corpus_fetch_puts_them(tmp_path, monkeypatch):
    """The synthetic benchmark reads WordNet from the corpus cache too, not only from /usr/share/wordnet."""
    import distill.corpus as corpus
    from evaluation.voxels_synthetic import wordnet_sentences

    cached = tmp_path / "cache" / "corpora" / "root" / "usr/share/wordnet"
    cached.mkdir(parents=True)
    for pos in ("noun", "verb", "adj", "adv"):
        (cached / f"data.{pos}").write_text(f'00001 03 n 01 x 0 000 | a gloss; "the {pos} example sentence"\n')
    monkeypatch.setattr(corpus, "SYSTEM_ROOT", tmp_path / "no-system-wordnet")
    monkeypatch.setenv("QAEMB_FAST_CACHE", str(tmp_path / "cache"))
    assert wordnet_sentences() == [f"the {pos} example sentence" for pos in ("noun", "verb", "adj", "adv")]


def test_cli_export_windows(wordnet, tmp_path):
    from qaemb_cli.main import main

    out = tmp_path / "w.txt"
    assert main(["voxels", "synthetic", "--n-stories", "2", "--story-seconds", "60", "--export-windows", str(out)]) == 0
    windows = out.read_text().splitlines()
    assert len(windows) == len(set(windows)) > 100
    assert max(len(w.split()) for w in windows) == 11
