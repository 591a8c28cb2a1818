"""Long jobs that survive being stopped: atomic writes, and a clean stop on SIGINT / SIGTERM.

Used by the student export (qaemb_fast/student.py), the labeller (distill/label.py) and training
(training/train.py). "Atomic" here means safe against the process being killed at any moment: a reader (or a
resumed job) sees the old file or folder, or the new one, never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from pathlib import Path


def atomic_write_text(path, text: str) -> Path:
    """Write `text` to `path` through a temp file in the same folder and os.replace (atomic on POSIX and Windows)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())  # small files: cheap, and the rename then never exposes an empty file after a crash
    os.replace(tmp, path)
    return path


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def replace_dir(tmp, final) -> Path:
    """Move the finished folder `tmp` to `final`, replacing any folder there.

    Renames only: the old folder is first renamed aside, so a kill leaves either the old folder, no folder (the
    job that was replacing it must be re-run), or the new one; never a half-written or half-deleted one.
    """
    tmp, final = Path(tmp), Path(final)
    aside = final.with_name(f".{final.name}.old{os.getpid()}")
    if aside.exists():
        shutil.rmtree(aside)
    if final.exists():
        os.replace(final, aside)
    os.replace(tmp, final)
    shutil.rmtree(aside, ignore_errors=True)
    return final


class Interrupted(KeyboardInterrupt):
    """A job stopped by SIGINT or SIGTERM. `exit_code` is the shell's convention, 128 + signal (130, 143).

    A KeyboardInterrupt, so callers that already stop on Ctrl-C stop on it too."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        super().__init__(f"stopped by {signal.Signals(self.signum).name}")


class StopOnSignals:
    """`with StopOnSignals() as stop:` SIGINT and SIGTERM raise `Interrupted` at once, and are remembered.

    Why both: an exception raised by a signal handler is lost where Python discards exceptions: in a finalizer
    (`__del__`, e.g. `ZipFile.__del__` right after a chunk file is written), a weakref callback, or C code that
    clears errors. That is how one Ctrl-C sent to `qaemb-fast label` right after a chunk was written was swallowed
    and the job ran on and exited 0. So the job also calls `stop.check()` after each unit of work, which raises for
    a signal whose exception got lost. Outside the main thread (where Python cannot install handlers) it does
    nothing but `check()`.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        raise Interrupted(signum)

    def check(self) -> None:
        """Raise `Interrupted` if a signal arrived (even if the exception its handler raised was swallowed)."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    def __exit__(self, *exc) -> bool:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
        return False
