"""qaemb-fast: interpretable QA embeddings at sentence-transformers speed.

Public surface: `QuestionSet`, `QAEmbedder` (the student behind `encode`), `StudentModel` (the student network,
shared with training) and `QAEmb` (drop-in for imodelsX's `QAEmb`). The torch-backed names load lazily, on first
use, so `import qaemb_fast` and `qaemb-fast --help` stay instant; importing this package never imports lightning
or datasets.
"""

from qaemb_fast.questions import QuestionSet

__all__ = ["QuestionSet", "QAEmbedder", "StudentModel", "QAEmb"]
__version__ = "0.1.0"

_LAZY = {
    "QAEmbedder": "qaemb_fast.embedder",
    "StudentModel": "qaemb_fast.student",
    "QAEmb": "qaemb_fast.imodelsx_compat",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'qaemb_fast' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
