"""Command-line options generated from config dataclasses: each default is written once, in the dataclass.

    add_config_options(parser, LabelConfig, overrides={"out": {"required": True}})   # one --option per field
    config = config_from_args(args, LabelConfig)                                     # and back to the dataclass

For each field: the flag is `--field-name`; the type comes from the annotation (int, float, str, `X | None`,
`str | int`, `int | float`, `tuple[X, ...]` -> several values, bool -> `--x / --no-x`); the default is the field's;
the help text is `metadata["help"]` or else the field's trailing `# comment`; other metadata entries (choices,
required, metavar, ...) and `overrides[name]` go to `add_argument` as they are (`flags` renames the option,
`more_help` is appended to the help text).

Also here: `add_config_command` (a subcommand that is one config dataclass and one `run(config)` function),
`UsageError` and `require_path` (user errors, reported by `qaemb_cli.main` as one `error:` line, exit 2).
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import inspect
import io
import textwrap
import tokenize
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path


class UsageError(ValueError):
    """A bad combination of options or a missing input, found before any work starts."""


def require_path(value, option: str, kind: str = "path") -> Path | None:
    """Path(value), or UsageError-style FileNotFoundError naming the option when it does not exist.
    kind: "file", "folder" or "path" (either). None stays None (an optional option not given)."""
    if value is None:
        return None
    path = Path(value)
    ok = path.is_file() if kind == "file" else path.is_dir() if kind == "folder" else path.exists()
    if not ok:
        what = {"file": "no such file", "folder": "no such folder"}.get(kind, "no such file or folder")
        if kind != "path" and path.exists():
            what = f"not a {kind}"
        raise FileNotFoundError(f"{option} {value}: {what}")
    return path


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# ---------------------------------------------------------------------------------------------------------------- types


def _int_or_str(value: str):
    """Lightning's devices: "auto", "0,1" and "-1" stay strings; "4" becomes 4."""
    return int(value) if value.isdigit() else value


def _int_or_float(value: str):
    """Lightning's limit_*_batches: an int is a count, a float a fraction."""
    return int(value) if value.lstrip("-").isdigit() else float(value)


def _parse_type(annotation):
    """(argparse type callable, nargs or None, is_bool) for a field annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if set(args) == {str, int}:
            return _int_or_str, None, False
        if set(args) == {int, float}:
            return _int_or_float, None, False
        if len(args) == 1:
            return _parse_type(args[0])
        return str, None, False
    if origin in (tuple, list):
        item = args[0] if args else str
        return _parse_type(item)[0], "+", False
    if annotation is bool:
        return None, None, True
    if annotation in (int, float, str):
        return annotation, None, False
    if annotation is Path:
        return str, None, False
    raise TypeError(f"no command-line type for annotation {annotation!r}")


@functools.cache
def field_comments(cls) -> dict[str, str]:
    """{field name: its trailing `# comment`} from the class source (empty when the source is not available)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    out = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found = [comments[i] for i in range(node.lineno, node.end_lineno + 1) if i in comments]
            if found:
                out[node.target.id] = " ".join(found)
    return out


def _default(f):
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _shown(value) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value)) or "none"
    return str(value)


# ---------------------------------------------------------------------------------------------------------------- the generator


def add_config_options(parser, config_cls, only=None, skip=(), overrides=None) -> list[str]:
    """Add one option per field of the dataclass `config_cls` (only: these fields, in this order; skip: not these).
    Returns the field names added, for `config_from_args`."""
    if not is_dataclass(config_cls):
        raise TypeError(f"{config_cls!r} is not a dataclass")
    overrides = overrides or {}
    hints = typing.get_type_hints(config_cls)
    comments = field_comments(config_cls)
    by_name = {f.name: f for f in fields(config_cls)}
    names = [n for n in (only or by_name) if n not in skip]
    for name in names:
        f = by_name[name]
        kwargs = {k: v for k, v in f.metadata.items() if k != "help"}
        kwargs.update(overrides.get(name, {}))
        flags = kwargs.pop("flags", None) or [flag(name)]
        help_text = kwargs.pop("help", None) or f.metadata.get("help") or comments.get(name, "")
        help_text += kwargs.pop("more_help", "")
        default = _default(f)
        required = kwargs.pop("required", default is MISSING)
        parse, nargs, is_bool = _parse_type(hints[name])
        if is_bool:
            shown = "on" if default else "off"
            parser.add_argument(
                *flags, dest=name, action=argparse.BooleanOptionalAction, default=default,
                help=f"{help_text} (default: {shown})".replace("%", "%%").strip(), **kwargs,
            )  # fmt: skip
            continue
        if not required and default not in (None, MISSING, ()):
            help_text += f" (default: {_shown(default)})"
        kwargs.setdefault("type", parse)
        if nargs:
            kwargs.setdefault("nargs", nargs)
            if "choices" in kwargs:  # argparse would print every choice twice per value: list them once
                help_text += f" (choices: {', '.join(map(str, kwargs['choices']))})"
                kwargs.setdefault("metavar", name.upper().rstrip("S"))
        if "choices" not in kwargs:
            kwargs.setdefault("metavar", name.upper())
        parser.add_argument(
            *flags, dest=name, default=None if default is MISSING else default, required=required,
            help=help_text.replace("%", "%%").strip(), **kwargs,
        )  # fmt: skip
    return names


def config_from_args(args: argparse.Namespace, config_cls, names=None, **values):
    """config_cls from the parsed options `names` (default: every field found in args), plus `values`.
    Lists from several-valued options become tuples where the field is a tuple."""
    hints = typing.get_type_hints(config_cls)
    for f in fields(config_cls):
        if f.name in values or (names is not None and f.name not in names) or not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        if isinstance(value, list) and typing.get_origin(hints[f.name]) is tuple:
            value = tuple(value)
        values[f.name] = value
    return config_cls(**values)


def add_command_group(sub, name: str, **parser_options):
    """A command group (`qaemb-fast NAME SUBCOMMAND ...`): returns its subparsers. Given without a subcommand, the
    group prints its own help (`qaemb_cli.main` reads `_parser`). parser_options: help, description, ..."""
    group = sub.add_parser(name, **parser_options)
    group.set_defaults(_parser=group)
    return group.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")


def add_config_command(
    sub, name, config_cls, run: str, help: str, description: str | None = None, report: str | None = None, **options
):
    """A subcommand whose options are the fields of `config_cls` and whose handler calls `run(config)`.

    run: "module:function", imported when the command runs (so `--help` stays instant). What is printed:
    `report(result)` when report ("module:function") is given, else the result's `.markdown()` when it has one,
    else the result itself when it is a str or Path.
    options: passed to `add_config_options` (only, skip, overrides).
    """
    p = sub.add_parser(name, help=help, description=description or help)
    names = add_config_options(p, config_cls, **options)

    def load(spec: str):
        module, function = spec.split(":")
        return getattr(importlib.import_module(module), function)

    def handler(args) -> int:
        result = load(run)(config_from_args(args, config_cls, names))
        if report:
            print(load(report)(result))
        elif hasattr(result, "markdown"):
            print(result.markdown())
        elif isinstance(result, (str, Path)):
            print(result)
        return 0

    handler.__name__ = "cmd_" + "_".join(p.prog.split()[1:]).replace("-", "_")  # cmd_<group>_<name>
    p.set_defaults(func=handler)
    return p
