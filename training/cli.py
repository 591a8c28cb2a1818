"""`qaemb-fast train`: its options are generated from the fields of `TrainConfig` (type, default and help string
live there, once), and `to_command(config)` turns a config back into the command line that reproduces it (the
model card prints it).

    qaemb-fast train --data data/labelled/NAME --out checkpoints/NAME [--backbone ...] [--questions FILE]
                     [--max-epochs N] [--accelerator gpu --devices 4 --strategy ddp --num-nodes 2 --precision ...]
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import MISSING, fields

from training.train import TrainConfig


def _int_or_str(value: str):
    """Lightning's devices: "auto", "0,1" and "-1" stay strings; "4" becomes 4."""
    return int(value) if value.isdigit() else value


def _int_or_float(value: str):
    """Lightning's limit_*_batches: an int is a batch count, a float a fraction."""
    return int(value) if value.isdigit() else float(value)


_PARSERS = {"int": int, "float": float, "str": str, "str | None": str, "str | int": _int_or_str,
            "float | None": _int_or_float}  # fmt: skip


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per TrainConfig field."""
    for f in fields(TrainConfig):
        meta = dict(f.metadata)
        help_text = meta.pop("help")
        required = meta.pop("required", False)
        default = None if f.default is MISSING else f.default
        if f.type == "bool":
            parser.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, default=default, help=help_text)
            continue
        suffix = "" if required or default is None else f" (default: {default})"
        parser.add_argument(
            _flag(f.name), type=_PARSERS[f.type], default=default, required=required, help=help_text + suffix,
            metavar=f.name.upper() if "choices" not in meta else None, **meta,
        )  # fmt: skip


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


def to_command(config: TrainConfig) -> str:
    """The `qaemb-fast train ...` command for `config`: data and out, then every option that differs from its
    default. Parsing it back gives an equal TrainConfig."""
    parts = ["qaemb-fast", "train", "--data", str(config.data), "--out", str(config.out)]
    for f in fields(TrainConfig):
        value = getattr(config, f.name)
        if f.name in ("data", "out") or value == f.default:
            continue
        if isinstance(value, bool):
            parts.append(_flag(f.name) if value else "--no-" + f.name.replace("_", "-"))
        else:
            parts += [_flag(f.name), str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def _run(args) -> int:
    from training.train import train

    out = train(config_from_args(args))
    print(f"saved the student and its model card to {out}")
    return 0


def register(sub) -> None:
    parser = sub.add_parser(
        "train",
        help="train a student on a labelled dataset (Lightning) and export it with a model card",
        description="Train a student (encoder + pooling + linear head) on the teacher answers in a labelled "
        "dataset, split by document into train/val/test; keep the best weights by the --monitor metric (validation loss by default); export "
        "them to --out with a model card of held-out metrics. Lightning checkpoints and logs go to "
        "<out>/../.lightning/<name>, outside the export folder.",
    )
    add_arguments(parser)
    parser.set_defaults(func=_run)
