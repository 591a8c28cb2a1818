"""The layers point one way: qaemb_fast (inference) <- distill, training <- evaluation <- qaemb_cli (the command line).

Two checks: importing every qaemb_fast module in a fresh interpreter loads none of the upper layers, lightning or
datasets (what a user of `from qaemb_fast import QAEmbedder` pays for); and a static read of every import
statement, including the ones inside functions, finds no import against the direction and no two modules that
import each other.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import qaemb_fast

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("qaemb_fast", "distill", "training", "evaluation", "qaemb_cli")
NEVER_WITH_QAEMB_FAST = ("distill", "training", "evaluation", "qaemb_cli", "lightning", "datasets")
# package -> the project packages it must never import
FORBIDDEN = {
    "qaemb_fast": {"distill", "training", "evaluation", "qaemb_cli"},
    "distill": {"training", "evaluation", "qaemb_cli"},  # training may read distill's labelled-dataset format
    "training": {"evaluation", "qaemb_cli"},
    "evaluation": {"qaemb_cli"},
    "qaemb_cli": set(),
}

QAEMB_FAST_MODULES = ["qaemb_fast"] + [m.name for m in pkgutil.walk_packages(qaemb_fast.__path__, "qaemb_fast.")]
PROBE = (
    "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
    "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules} & set(sys.argv[2:]))))"
)


def _loaded_by(module: str, code: str = PROBE) -> list[str]:
    r = subprocess.run(
        [sys.executable, "-c", code, module, *NEVER_WITH_QAEMB_FAST], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, f"importing {module} failed:\n{r.stderr[-2000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_every_qaemb_fast_module_imports_no_upper_layer_lightning_or_datasets():
    assert len(QAEMB_FAST_MODULES) > 10  # the walk found the package (and its voxels subpackage)
    with ThreadPoolExecutor(max_workers=4) as pool:  # one fresh interpreter per module, a few at a time
        loaded = dict(zip(QAEMB_FAST_MODULES, pool.map(_loaded_by, QAEMB_FAST_MODULES)))
    offenders = {m: found for m, found in loaded.items() if found}
    assert not offenders, f"qaemb_fast modules that load upper layers or heavy training libraries: {offenders}"


def test_public_api_loads_no_upper_layer():
    code = (
        "import json, sys; from qaemb_fast import QAEmb, QAEmbedder, QuestionSet, StudentModel; "
        "assert all(callable(x) for x in (QAEmb, QAEmbedder, QuestionSet, StudentModel)); "
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules} & set(sys.argv[2:]))))"
    )
    assert _loaded_by("qaemb_fast", code) == []


# ---------------------------------------------------------------------------------------------------------------- static


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py")) if "data" not in p.parts
}


def imports_of(module: str) -> set[str]:
    """Project modules that `module` imports anywhere in its file (top level, functions, conditional blocks).
    `from a.b import c` counts a.b.c when that is a module, else a.b; parent packages are not counted (a package
    importing its own submodules is no cycle)."""
    path = MODULES[module]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] in PACKAGES}
    found.discard(module)
    return found


def test_static_imports_point_one_way():
    assert {"qaemb_fast.embedder", "distill.label", "training.train", "evaluation.classify", "qaemb_cli.main"} <= set(
        MODULES
    )
    wrong = [
        f"{module} imports {target}"
        for module in MODULES
        for target in sorted(imports_of(module))
        if target.split(".")[0] in FORBIDDEN[module.split(".")[0]]
    ]
    assert not wrong, "imports against the layer direction:\n" + "\n".join(wrong)


def test_no_two_modules_import_each_other():
    graph = {module: imports_of(module) for module in MODULES}
    pairs = sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets if a in graph.get(b, ())})
    assert not pairs, f"modules that import each other: {pairs}"


def test_the_static_reader_sees_imports_inside_functions(tmp_path, monkeypatch):
    """The check above can fail: an import hidden in a function body is found."""
    fake = tmp_path / "qaemb_fast" / "fake.py"
    fake.parent.mkdir()
    fake.write_text("def f():\n    from distill.label import LabelConfig\n    import training.train\n")
    monkeypatch.setitem(MODULES, "qaemb_fast.fake", fake)
    assert imports_of("qaemb_fast.fake") == {"distill.label", "training.train"}


def test_command_line_builds_without_torch():
    """`qaemb-fast --help` stays instant: building the parser imports no torch, lightning, datasets or transformers."""
    code = (
        "import json, sys; from qaemb_cli.main import build_parser; build_parser(); "
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules} & set(sys.argv[1:]))))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "torch", "lightning", "datasets", "transformers"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
