"""The `qaemb-fast` console script: one parser, one module per command group, one place for user errors.

    embed                               qaemb_cli/embed.py      a student answers every question for texts
    teacher prepare|list|ask, label     qaemb_cli/teacher.py    a teacher LLM answers; the resumable labelling job
    corpus fetch|export|stats           qaemb_cli/corpus.py     the texts to label
    train                               qaemb_cli/train.py      a student from a labelled dataset
    voxels fit|score|top-questions|synthetic|benchmark           qaemb_cli/voxels.py
    questions generate|select|subset-labels                      qaemb_cli/questions.py
    eval classify|export-texts|d3       qaemb_cli/evaluate.py   the paper's simple NLP tasks, D3 gold labels

Options come from the config dataclasses (qaemb_cli/options.py); handlers are named `cmd_<group>_<command>`.
Building the parser imports no torch, lightning or datasets (handlers import them), so `--help` is instant.
A user error (a missing file or folder, a bad question set, a mismatched setup, a bad checkpoint, ...) prints one
`error: ...` line and exits 2; set QAEMB_FAST_TRACEBACK=1 to see the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from qaemb_cli import corpus, embed, evaluate, questions, teacher, train, voxels

COMMAND_MODULES = (embed, teacher, corpus, train, voxels, questions, evaluate)
PROJECT_PACKAGES = ("qaemb_fast", "distill", "training", "evaluation", "qaemb_cli")
# Errors that mean "the input is wrong", not "the program is wrong". ValueError covers the project's own error
# classes (CorpusError, LabelledDatasetError, QuestionSetError, StudentCheckpointError, TeacherError, ...) and
# UnicodeDecodeError; KeyError covers unknown questions (the message names the closest known ones).
USER_ERRORS = (
    ValueError,
    KeyError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qaemb-fast",
        description="Interpretable QA embeddings: label texts with a teacher LLM, train a small student, embed fast.",
        epilog="`qaemb-fast COMMAND --help` explains each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def is_user_error(e: BaseException) -> bool:
    """Input errors and every error class the project defines (some, like TaskDataError, are not ValueErrors)."""
    return isinstance(e, USER_ERRORS) or type(e).__module__.split(".")[0] in PROJECT_PACKAGES


def error_message(e: BaseException) -> str:
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        # A group command ("qaemb-fast teacher") without its subcommand: show that group's help.
        (getattr(args, "_parser", None) or parser).print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as e:
        # SIGINT exits 130, SIGTERM 143 (qaemb_fast/jobs.py sets exit_code on the exception it raises).
        print("interrupted", file=sys.stderr)
        return getattr(e, "exit_code", 130)
    except Exception as e:
        if not is_user_error(e) or os.environ.get("QAEMB_FAST_TRACEBACK"):
            raise
        print(f"error: {error_message(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
