"""The one command line (qaemb_cli): options generated from config dataclasses, and user errors as one line.

Every user error (a missing file or folder, bad input) prints one `error: ...` line and exits 2, before any heavy
import (the subprocess checks that torch and lightning were never loaded).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest

from qaemb_cli.main import build_parser, main
from qaemb_cli.options import add_config_options, config_from_args, field_comments

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------------- options


@dataclass
class ToyConfig:
    data: str  # input folder
    epochs: int = 3  # passes over the data
    rate: float | None = None  # learning rate (default: from the schedule)
    mode: str = field(default="fast", metadata={"choices": ("fast", "exact")})  # how to run
    merge: bool = True  # merge at the end
    verbose: bool = False
    delays: tuple[int, ...] = (1, 2)  # FIR delays
    devices: str | int = "auto"  # a count or a list
    limit: int | float | None = None  # a count (int) or a fraction (float)
    name: str = field(default="x", metadata={"help": "the name, from metadata"})  # a comment that loses


def _toy_parser(**overrides):
    parser = argparse.ArgumentParser(prog="toy")
    names = add_config_options(parser, ToyConfig, **overrides)
    return parser, names


def test_options_follow_the_dataclass_defaults_types_and_help():
    parser, names = _toy_parser()
    assert names == [f.name for f in fields(ToyConfig)]
    assert config_from_args(parser.parse_args(["--data", "d"]), ToyConfig) == ToyConfig(data="d")
    args = parser.parse_args(
        ["--data", "d", "--epochs", "5", "--rate", "0.1", "--mode", "exact", "--no-merge", "--verbose",
         "--delays", "1", "2", "3", "--devices", "4", "--limit", "0.5", "--name", "y"]
    )  # fmt: skip
    config = config_from_args(args, ToyConfig)
    assert config == ToyConfig("d", 5, 0.1, "exact", False, True, (1, 2, 3), 4, 0.5, "y")
    assert config_from_args(parser.parse_args(["--data", "d", "--devices", "0,1", "--limit", "7"]), ToyConfig) == (
        ToyConfig("d", devices="0,1", limit=7)
    )
    with pytest.raises(SystemExit):  # a required field (no default) is a required option
        parser.parse_args([])
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "d", "--mode", "slow"])  # choices from the field's metadata
    text = parser.format_help()
    assert "passes over the data (default: 3)" in text  # help from the trailing comment, plus the default
    assert "FIR delays (default: 1 2)" in text and "merge at the end (default: on)" in text
    assert "the name, from metadata" in text and "a comment that loses" not in text
    assert "--no-merge" in text and "{fast,exact}" in text


def test_options_only_skip_and_overrides():
    parser, names = _toy_parser(
        only=("data", "epochs", "rate"),
        overrides={"data": {"required": False}, "epochs": {"flags": ["--passes", "--epochs"], "more_help": "!"}},
    )
    assert names == ["data", "epochs", "rate"]
    args = parser.parse_args(["--passes", "7"])
    assert args.epochs == 7 and args.data is None and not hasattr(args, "mode")
    assert config_from_args(args, ToyConfig, names, data="z") == ToyConfig("z", epochs=7)
    assert "passes over the data! (default: 3)" in parser.format_help()
    parser, names = _toy_parser(skip=("name", "limit"))
    assert "name" not in names and "limit" not in names and "mode" in names


def test_field_comments_read_the_source():
    comments = field_comments(ToyConfig)
    assert comments["epochs"] == "passes over the data" and "verbose" not in comments


# The real configs: parsing the minimal command gives exactly the dataclass defaults (one definition of each).


def _subparser(*path):
    parser = build_parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize(
    "command, argv, config_cls, expected",
    [
        (("label",), ["--out", "o"], "distill.label:LabelConfig", {"out": "o"}),
        (("train",), ["--data", "d", "--out", "o"], "training.train:TrainConfig", {"data": "d", "out": "o"}),
        (("eval", "classify"), ["--task", "food", "--out", "r.json"], "evaluation.classify:ClassifyConfig", {}),
        (("voxels", "synthetic"), [], "evaluation.voxels_synthetic:SyntheticConfig", {}),
        (("questions", "generate"), ["--examples", "e", "--out", "o"], "distill.question_generation:GenerationConfig", {}),
    ],
)  # fmt: skip
def test_generated_defaults_equal_the_dataclass_defaults(command, argv, config_cls, expected):
    import importlib

    module, name = config_cls.split(":")
    cls = getattr(importlib.import_module(module), name)
    args = _subparser(*command).parse_args(argv)
    assert config_from_args(args, cls) == cls(**expected)


def test_every_group_has_a_description_and_cmd_handlers():
    def walk(parser, path):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path, parser
            return
        if path:
            assert parser.description, f"`qaemb-fast {' '.join(path)}` has no description"
        for name, child in subs[0].choices.items():
            yield from walk(child, path + (name,))

    commands = dict(walk(build_parser(), ()))
    assert {("embed",), ("label",), ("train",), ("voxels", "benchmark"), ("eval", "d3"), ("corpus", "fetch")} <= set(
        commands
    )
    for path, parser in commands.items():
        handler = parser.get_default("func")
        expected = "cmd_" + "_".join(path).replace("-", "_")
        assert handler is not None and handler.__name__ == expected, (path, handler)


def test_help_lists_the_choices():
    from distill.offline_teachers import OFFLINE_TEACHERS
    from distill.teacher import PROMPTS

    text = " ".join(_subparser("label").format_help().split())
    assert all(name in text for name in OFFLINE_TEACHERS) and all(f"'{p}'" in text for p in PROMPTS)
    assert "--few-shot {paper,hard-negatives,none}" in text
    from dataclasses import fields

    from distill.label import LabelConfig
    from distill.teacher import FEW_SHOTS

    # label.py keeps its own copy of the names (importing the teacher would load torch for `--help`): same set
    few_shot = next(f for f in fields(LabelConfig) if f.name == "few_shot")
    assert set(few_shot.metadata["choices"]) == set(FEW_SHOTS)
    assert "{student,teacher,bow,tfidf,minilm,majority}" not in _subparser("eval", "classify").format_help()
    assert "choices: student, teacher, bow" in " ".join(_subparser("eval", "classify").format_help().split())


# ---------------------------------------------------------------------------------------------------------------- errors

PROBE = (
    "import json, sys; from qaemb_cli.main import main; rc = main(json.loads(sys.argv[1])); "
    "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules} & {'torch', 'lightning'})), file=sys.stdout); "
    "sys.exit(rc)"
)


def run_cli(argv, cwd):
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True, cwd=cwd)
    return r, time.perf_counter() - start


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "missing", "--out", "out"], "--data missing: no such folder"),
        (["embed", "--checkpoint", "missing", "hello"], "--checkpoint missing: no such folder"),
        (["embed", "--input", "missing.txt"], "--input missing.txt: no such file or folder"),
        (["label", "--corpus", "missing.jsonl", "--out", "out"], "corpus not found: missing.jsonl"),
        (["label", "--questions", "missing.json", "--out", "out"], "missing.json"),
        (["voxels", "fit", "--data", "missing", "--subject", "S", "--word-rate", "--out", "m"], "--data missing"),
        (["voxels", "fit", "--data", ".", "--subject", "S", "--out", "m"], "exactly one feature source"),
        (["eval", "classify", "--task", "food", "--student", "missing", "--out", "r.json"], "--student missing"),
        (["questions", "subset-labels", "--data", "missing", "--questions", "q", "--out", "o"], "--data missing"),
        (["corpus", "stats", "missing.txt"], "corpus not found"),
    ],
)
def test_user_errors_are_one_line_exit_2_before_heavy_imports(tmp_path, argv, message):
    r, seconds = run_cli(argv, tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []  # failed before torch / lightning were imported
    assert seconds < 20  # generous for a loaded CI machine; about 0.4 s here


def test_unfinished_labels_fail_train_before_lightning(tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "provenance.json").write_text(json.dumps({"questions": ["Is it?"]}))
    r, _ = run_cli(["train", "--data", "labels", "--out", "out"], tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "labelling has not finished" in r.stderr
    assert "lightning" not in json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv"])
def test_non_utf8_input_names_the_file_and_line(tmp_path, suffix):
    head = {".txt": b"first text\n", ".jsonl": b'{"text": "first text"}\n', ".csv": b"text\nfirst text\n"}[suffix]
    bad = tmp_path / f"texts{suffix}"
    body = {".txt": b"caf\xe9 au lait\n", ".jsonl": b'{"text": "caf\xe9"}\n', ".csv": b"caf\xe9\n"}[suffix]
    bad.write_bytes(head + body)
    line = head.count(b"\n") + 1
    r, _ = run_cli(["embed", "--input", bad.name], tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad.name}:{line}: not UTF-8 text (byte 0xe9)"), r.stderr
    from distill.corpus import CorpusError, read_corpus

    with pytest.raises(CorpusError, match=rf"texts\{suffix}:{line}: not UTF-8"):
        read_corpus(bad)


def test_a_bug_is_not_hidden_as_a_user_error(monkeypatch):
    """Only input errors become one line: a programming error keeps its traceback."""
    import qaemb_cli.corpus

    def broken(args):
        raise AttributeError("a bug")

    monkeypatch.setattr(qaemb_cli.corpus, "cmd_corpus_stats", broken)
    with pytest.raises(AttributeError):
        main(["corpus", "stats", "x"])


def test_group_without_subcommand_prints_its_help(capsys):
    assert main(["teacher"]) == 2
    assert "prepare" in capsys.readouterr().out


def test_non_utf8_question_set_names_the_file_and_line(tmp_path):
    (tmp_path / "q.txt").write_bytes(b"Does the input mention food?\nIs the input about caf\xe9s?\n")
    r, _ = run_cli(["label", "--questions", "q.txt", "--out", "out"], tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: q.txt:2: not UTF-8 text"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
