"""TR-level story data (qaemb_fast.voxels.trlevel) and the real-fMRI benchmark (evaluation.real_fmri), on tiny fake
stories written in the TR-level layout: the loader's round trip and errors, the block bootstrap against a plain
reference, and the benchmark's arithmetic (a space equal to the planted signal beats random answers)."""

import json

import numpy as np
import pytest
from voxel_fixtures import FILLER, KeywordTestEncoder
from voxel_fixtures import TOPICS as ALL_TOPICS

from evaluation.real_fmri import (
    MISSING_WINDOWS_FILE,
    BenchmarkConfigError,
    RealFmriBenchmarkConfig,
    block_bootstrap_r,
    block_bounds,
    compare_spaces,
    results_markdown,
    run_real_fmri_benchmark,
    training_story_subset,
)
from qaemb_fast.voxels import (
    ContextWindowAnswers,
    DatasetLayoutError,
    FeatureConfig,
    VoxelDataError,
    VoxelEncoder,
    VoxelEncoderConfig,
    WordRate,
    list_splits,
    list_subjects,
    list_trlevel_stories,
    load_trlevel,
    pearson_r,
    trlevel_feature_config,
)
from qaemb_fast.voxels.ds003020 import TR
from qaemb_fast.voxels.features import context_windows, story_features

TOPICS = dict(list(ALL_TOPICS.items())[:4])


def KeywordFake():
    """A cheap answerer: 1 if the window contains one of the question's keywords."""
    return KeywordTestEncoder(TOPICS)


class HashEmbedder:
    """A cheap sentence embedder: a fixed random vector per text."""

    dim = 8

    def encode(self, texts, batch_size=32, show_progress_bar=False):
        return np.stack([np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(self.dim) for t in texts])


def write_layout(root, texts: dict, responses: dict):
    """texts: {story: [str per TR]}; responses: {subject: {split: {story: (n_TR, V) array}}}."""
    (root / "texts").mkdir(parents=True, exist_ok=True)
    for name, trs in texts.items():
        (root / "texts" / f"{name}.json").write_text(json.dumps(trs))
    index = {}
    for subj, splits in responses.items():
        index[subj] = {}
        for split, arrays in splits.items():
            index[subj][split] = list(arrays)
            (root / subj / split).mkdir(parents=True, exist_ok=True)
            for name, y in arrays.items():
                np.save(root / subj / split / f"{name}.npy", np.asarray(y, dtype=np.float16))
    (root / "stories.json").write_text(json.dumps(index))
    return root


def fake_tr_texts(rng, n_trs, words_per_tr=3, empty=0.1, topic_rate=0.15):
    topic_words = [w for ws in TOPICS.values() for w in ws]
    out = []
    for _ in range(n_trs):
        n = 0 if rng.random() < empty else int(rng.integers(1, 2 * words_per_tr))
        out.append(
            " ".join(rng.choice(topic_words) if rng.random() < topic_rate else rng.choice(FILLER) for _ in range(n))
        )
    return out


# ------------------------------------------------------------------------------------------------------------
# Loader


@pytest.fixture
def small_layout(tmp_path):
    texts = {
        "alpha": ["the dog ran", "", "a cat", "and then the bird"],
        "beta": ["rain", "snow and wind", "money"],
        "gamma": ["old", "new", "", "soup here"],
    }
    rng = np.random.default_rng(0)
    y = {k: rng.standard_normal((len(v), 5)) for k, v in texts.items()}
    resp = {
        "S1": {"train": {"alpha": y["alpha"], "beta": y["beta"]}, "test": {"gamma": y["gamma"]}},
        "S2": {"train": {"alpha": y["alpha"]}, "test": {"gamma": y["gamma"]}},
    }
    return write_layout(tmp_path / "data", texts, resp), texts, y


def test_loader_round_trip_words_times_no_trimming(small_layout):
    root, texts, y = small_layout
    assert list_subjects(root) == ["S1", "S2"]
    assert list_splits(root, "S1") == {"train": ["alpha", "beta"], "test": ["gamma"]}
    assert list_trlevel_stories(root, "S1") == ["alpha", "beta", "gamma"]

    stories, responses = load_trlevel(root, "S1", split="train")
    assert [s.name for s in stories] == ["alpha", "beta"]
    a = stories[0]
    assert a.words == ["the", "dog", "ran", "a", "cat", "and", "then", "the", "bird"]
    # TR i spans [i TR, (i+1) TR); word j of n in TR i at i TR + (j + 0.5) / n TR; TR 1 is empty.
    want = [(0 + (j + 0.5) / 3) * TR for j in range(3)] + [(2 + (j + 0.5) / 2) * TR for j in range(2)]
    want += [(3 + (j + 0.5) / 4) * TR for j in range(4)]
    np.testing.assert_allclose(a.word_times, want)
    np.testing.assert_allclose(a.tr_times, (np.arange(4) + 0.5) * TR)
    # One response row per TR of the text file: nothing trimmed; float16 on disk -> float32.
    assert [r.shape for r in responses] == [(4, 5), (3, 5)]
    assert responses[0].dtype == np.float32
    np.testing.assert_array_equal(responses[0], y["alpha"].astype(np.float16).astype(np.float32))

    # split=None finds each story's split; given names keep their order.
    stories, responses = load_trlevel(root, "S1", stories=["gamma", "alpha"])
    assert [s.name for s in stories] == ["gamma", "alpha"] and responses[0].shape == (4, 5)

    # The trlevel config keeps every TR; the default FeatureConfig would trim 15 and the encoder says so.
    assert trlevel_feature_config().n_kept(a) == a.n_trs
    assert trlevel_feature_config(delays=(1, 2)).delays == (1, 2) and trlevel_feature_config().trim_start == 0
    x = story_features(WordRate(), a, trlevel_feature_config())
    assert x.shape == (4, 4)
    enc = VoxelEncoder(WordRate(), VoxelEncoderConfig(features=FeatureConfig()))
    with pytest.raises((VoxelDataError, ValueError)):
        enc._check_responses([a], [responses[1]])


def test_loader_config_is_fresh_each_call():
    c = trlevel_feature_config()
    c.delays = (7,)
    assert trlevel_feature_config().delays == (1, 2, 3, 4)


def _break(root, how):
    if how == "missing_text":
        (root / "texts" / "beta.json").unlink()
    elif how == "missing_npy":
        (root / "S1" / "train" / "beta.npy").unlink()
    elif how == "length_mismatch":
        np.save(root / "S1" / "train" / "beta.npy", np.zeros((5, 5), np.float16))
    elif how == "nan_row":
        y = np.zeros((3, 5), np.float16)
        y[2, 1] = np.nan
        np.save(root / "S1" / "train" / "beta.npy", y)
    elif how == "no_words":
        (root / "texts" / "beta.json").write_text(json.dumps(["", " ", ""]))


@pytest.mark.parametrize(
    "how, match",
    [
        ("missing_text", r"texts/beta\.json: missing text file"),
        ("missing_npy", r"S1/train/beta\.npy: missing response file"),
        ("length_mismatch", r"beta\.npy: 5 response rows but texts/beta\.json has 3 TRs"),
        ("nan_row", r"beta\.npy: 1 row\(s\) contain NaN or inf \(first: TR 2\)"),
        ("no_words", r"beta\.json: story 'beta' has no words at all"),
    ],
)
def test_loader_file_errors(small_layout, how, match):
    root = small_layout[0]
    _break(root, how)
    with pytest.raises(DatasetLayoutError, match=match) as e:
        load_trlevel(root, "S1", split="train")
    assert "\n" not in str(e.value)


def test_loader_index_errors(small_layout, tmp_path):
    root = small_layout[0]
    with pytest.raises(DatasetLayoutError, match=r"stories\.json: no subject 'S9'; subjects there: S1, S2"):
        load_trlevel(root, "S9")
    with pytest.raises(DatasetLayoutError, match=r"subject 'S1' has no split 'dev'; splits: train, test"):
        load_trlevel(root, "S1", split="dev")
    with pytest.raises(DatasetLayoutError, match=r"story 'delta' is not listed for subject 'S1'"):
        load_trlevel(root, "S1", stories=["delta"])
    with pytest.raises(
        DatasetLayoutError, match=r"story 'gamma' is not in the 'train' split of subject 'S1' \(it is in test\)"
    ):
        load_trlevel(root, "S1", split="train", stories=["gamma"])
    with pytest.raises(DatasetLayoutError, match=r"stories\.json: not found"):
        load_trlevel(tmp_path / "nowhere", "S1")


# ------------------------------------------------------------------------------------------------------------
# Bootstrap


def test_block_bounds_stay_inside_stories():
    assert block_bounds([25, 12], 10) == [(0, 10), (10, 20), (20, 25), (25, 35), (35, 37)]


def test_block_bootstrap_matches_plain_resampling():
    rng = np.random.default_rng(1)
    lengths = [23, 17]
    y = rng.standard_normal((40, 6))
    p = y + rng.standard_normal((40, 6))
    got = block_bootstrap_r(y, {"p": p}, lengths, block_trs=5, n_bootstrap=4, seed=3)["p"]
    bounds = block_bounds(lengths, 5)
    draws = np.random.default_rng(3).integers(0, len(bounds), size=(4, len(bounds)))
    for b in range(4):
        rows = np.concatenate([np.arange(*bounds[k]) for k in draws[b]])
        np.testing.assert_allclose(got[b], pearson_r(y[rows], p[rows]), atol=1e-10)


def test_bootstrap_intervals_contain_point_estimates():
    rng = np.random.default_rng(2)
    y = rng.standard_normal((300, 12))
    preds = {"good": y + 2 * rng.standard_normal(y.shape), "bad": rng.standard_normal(y.shape)}
    out = compare_spaces(y, preds, [150, 150], "good", n_top=4, n_bootstrap=500, block_trs=10, seed=0)
    for row in out.values():
        assert row["mean_r_ci"][0] <= row["mean_r"] <= row["mean_r_ci"][1]
        assert row["mean_r_top_ci"][0] <= row["mean_r_top"] <= row["mean_r_top_ci"][1]
    bad = out["bad"]
    assert bad["diff_ci"][0] <= bad["diff"] <= bad["diff_ci"][1] and bad["diff_ci"][0] > 0
    assert "diff" not in out["good"]


# ------------------------------------------------------------------------------------------------------------
# The benchmark on planted responses


def planted_layout(root, n_train=6, n_test=2, n_trs=70, n_targets=12, noise=0.7, seed=0):
    """Responses = the fake student's own design matrix (trlevel pipeline) times random weights + noise."""
    from qaemb_fast.voxels.trlevel import story_from_tr_texts

    rng = np.random.default_rng(seed)
    names = [f"story{i}" for i in range(n_train + n_test)]
    texts = {n: fake_tr_texts(rng, n_trs) for n in names}
    src = ContextWindowAnswers(KeywordFake())
    fc = trlevel_feature_config()
    w = rng.standard_normal((len(TOPICS) * len(fc.delays), n_targets))
    ys = {}
    for n in names:
        x = story_features(src, story_from_tr_texts(n, texts[n]), fc)
        ys[n] = x @ w / np.sqrt(w.shape[0]) + noise * rng.standard_normal((n_trs, n_targets))
    resp = {"S1": {"train": {n: ys[n] for n in names[:n_train]}, "test": {n: ys[n] for n in names[n_train:]}}}
    return write_layout(root, texts, resp), texts


def label_folder(path, texts, answers, questions, teacher="fake-teacher"):
    from distill.label import write_chunk
    from distill.labelled_dataset import PROVENANCE_FILE

    path.mkdir(parents=True)
    (path / PROVENANCE_FILE).write_text(json.dumps({"teacher": teacher, "questions": questions}))
    write_chunk(path, 0, list(texts), np.asarray(answers, np.float32))
    return path


def all_windows(texts):
    return sorted({w for trs in texts.values() for w in context_windows(" ".join(trs).split(), 10)})


def test_benchmark_planted_signal_beats_random_and_writes_outputs(tmp_path):
    root, texts = planted_layout(tmp_path / "data")
    windows = all_windows(texts)
    teacher = label_folder(tmp_path / "teacher", windows, KeywordFake().encode(windows), list(TOPICS))
    cfg = RealFmriBenchmarkConfig(
        data=str(root),
        subjects=("S1",),
        spaces=("student", "teacher", "minilm", "word_rate", "random"),
        teacher_answers=str(teacher),
        out=str(tmp_path / "out"),
        n_bootstrap=300,
        n_plot_pcs=2,
        progress=False,
    )
    result = run_real_fmri_benchmark(cfg, student=KeywordFake(), sentence_embedder=HashEmbedder(), log=lambda m: None)
    rows = {r["space"]: r for r in result["subjects"]["S1"]["rows"]}
    assert list(rows) == ["student", "teacher", "minilm", "word_rate", "random"]
    assert rows["student"]["n_features"] == rows["random"]["n_features"] == len(TOPICS)
    assert rows["minilm"]["n_features"] == HashEmbedder.dim and len(rows["student"]["r"]) == 12
    # The student's answers are the planted signal: far better than random answers, CI of the difference above 0.
    assert rows["student"]["mean_r"] > 0.5 > rows["random"]["mean_r"] + 0.3
    assert rows["random"]["diff_ci"][0] > 0.2
    # Same answers as the student -> same predictions -> zero difference.
    assert rows["teacher"]["diff"] == pytest.approx(0, abs=1e-6)
    res = result["subjects"]["S1"]
    assert res["test_stories"] == ["story6", "story7"] and res["n_test_trs"] == 140 and res["n_train_trs"] == 420

    out = tmp_path / "out"
    md = (out / "results.md").read_text()
    assert md.strip() == results_markdown(result).strip()
    assert "| S1 | student QA | 4 |" in md and "| S1 | random answers | 4 |" in md and "blocks of 10" in md
    saved = json.loads((out / "results.json").read_text())
    assert "models" not in saved and saved["subjects"]["S1"]["rows"][0]["mean_r"] == rows["student"]["mean_r"]
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "r_per_pc_S1.png",
        "top_questions_S1_student_pc1.png",
        "top_questions_S1_student_pc2.png",
        "top_questions_S1_teacher_pc1.png",
        "top_questions_S1_teacher_pc2.png",
    ]


def test_benchmark_skips_teacher_with_missing_windows(tmp_path):
    root, texts = planted_layout(tmp_path / "data", n_train=2, n_test=1, n_trs=30, n_targets=3)
    windows = all_windows(texts)
    half = windows[::2]
    teacher = label_folder(tmp_path / "teacher", half, KeywordFake().encode(half), list(TOPICS))
    cfg = RealFmriBenchmarkConfig(
        data=str(root),
        subjects="S1",
        spaces=("teacher", "word_rate"),
        teacher_answers=[str(teacher)],
        out=str(tmp_path / "out"),
        n_bootstrap=50,
        progress=False,
    )
    result = run_real_fmri_benchmark(cfg, log=lambda m: None)
    assert [r["space"] for r in result["subjects"]["S1"]["rows"]] == ["word_rate"]
    missing = (tmp_path / "out" / MISSING_WINDOWS_FILE).read_text().splitlines()
    assert missing == sorted(set(windows) - set(half))
    note = next(n for n in result["notes"] if n.startswith("teacher QA: skipped"))
    assert f"{len(missing)} of {len(windows)} windows have no teacher answers" in note
    assert note in (tmp_path / "out" / "results.md").read_text()
    # The documented fix: label the missing windows into a second folder and pass both.
    rest = label_folder(tmp_path / "teacher2", missing, KeywordFake().encode(missing), list(TOPICS))
    cfg.teacher_answers = (str(teacher), str(rest))
    result = run_real_fmri_benchmark(cfg, log=lambda m: None)
    assert [r["space"] for r in result["subjects"]["S1"]["rows"]] == ["teacher", "word_rate"]
    # A folder from another teacher is refused rather than mixed in.
    other = label_folder(tmp_path / "teacher3", missing, KeywordFake().encode(missing), list(TOPICS), teacher="other")
    cfg.teacher_answers = (str(teacher), str(other))
    with pytest.raises(BenchmarkConfigError, match="another teacher or other questions"):
        run_real_fmri_benchmark(cfg, log=lambda m: None)


def test_benchmark_config_errors(tmp_path):
    root, _ = planted_layout(tmp_path / "data", n_train=2, n_test=1, n_trs=20, n_targets=2)
    with pytest.raises(BenchmarkConfigError, match="unknown feature space"):
        run_real_fmri_benchmark(RealFmriBenchmarkConfig(data=str(root), subjects="S1", spaces=("glove",)))
    with pytest.raises(BenchmarkConfigError, match=r"subject\(s\) \['UTS01', 'UTS02'\] not in"):
        run_real_fmri_benchmark(RealFmriBenchmarkConfig(data=str(root), spaces=("word_rate",)))
    with pytest.raises(BenchmarkConfigError, match="data folder not found"):
        run_real_fmri_benchmark(RealFmriBenchmarkConfig(data=str(tmp_path / "nope")))


def test_training_story_subset_is_seeded_and_shared_across_subjects():
    a = [f"s{i}" for i in range(30)]
    b = a + ["extra1", "extra2"]
    sa, sb = training_story_subset(a, 5, 0), training_story_subset(b, 5, 0)
    assert len(sa) == 5 and sa == training_story_subset(a, 5, 0) and sa != training_story_subset(a, 5, 1)
    assert len(set(sa) & set(sb)) >= 3  # mostly the same stories, though b has two more candidates
    assert training_story_subset(a, None, 0) == a


@pytest.mark.slow
def test_benchmark_with_the_shipped_student(tmp_path):
    root, _ = planted_layout(tmp_path / "data", n_train=2, n_test=1, n_trs=25, n_targets=3)
    cfg = RealFmriBenchmarkConfig(
        data=str(root), subjects="S1", spaces=("student", "random"), n_bootstrap=50, progress=False
    )
    result = run_real_fmri_benchmark(cfg, log=lambda m: None)
    rows = {r["space"]: r for r in result["subjects"]["S1"]["rows"]}
    assert rows["student"]["n_features"] == rows["random"]["n_features"] > 50
    assert np.isfinite(rows["student"]["mean_r"]) and "diff_ci" in rows["random"]
