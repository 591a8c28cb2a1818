"""The `qaemb-fast` console script.

Each part of the project registers its own subcommands (`register(subparsers)` in its `cli` module), so this
file only wires them together. Registration must stay cheap: heavy imports (torch, datasets, lightning) happen
inside the command handlers, so `qaemb-fast --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, what it adds). Modules that are missing are skipped, so an install without the training extras
# still serves `embed`.
COMMAND_MODULES = [
    "qaemb_fast.embed_cli",  # embed, bench student
    "distill.cli",  # teacher prepare/list/ask, label
    "distill.corpus_cli",  # corpus fetch / export / stats
    "training.cli",  # train
    "qaemb_fast.voxels.cli",  # voxels fit / score / top-questions / synthetic
    "qaemb_fast.question_cli",  # questions generate / select, eval classify
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qaemb-fast",
        description="Interpretable QA embeddings: label texts with a teacher LLM, train a small student, embed fast.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):
                continue  # that part is not written/installed yet
            raise
        module.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        # A group command ("qaemb-fast teacher") without its subcommand: show that group's help.
        (getattr(args, "_parser", None) or parser).print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
