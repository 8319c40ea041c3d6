"""Logging set-up shared by the CLI and the pipeline's scripts."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from sva.utils.errors import UserError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def log_to_file(path: str | Path | None, level: int = logging.INFO) -> Iterator[None]:
    """Send ``logging`` records to ``path`` (and stderr) for the duration of a job.

    The log is appended to, never overwritten: a resumed job's log keeps the lines of
    the job that did the work. An uncaught exception is written to the log with its
    traceback before it propagates, so ``logs/…`` explains every failed job; a
    :class:`~sva.utils.errors.UserError` (bad config, missing or corrupted file) is written as
    its one-line message instead and the job exits with status 1, without a traceback.
    """
    os.environ.setdefault("SVA_PROGRESS_BARS", "0")
    root = logging.getLogger()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="a", encoding="utf-8"))
    for h in handlers:
        h.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(h)
    old_level = root.level
    root.setLevel(level)
    logging.captureWarnings(True)
    try:
        yield
    except UserError as err:
        logging.getLogger("sva").error("%s", err)
        raise SystemExit(1) from None
    except BaseException:
        logging.getLogger("sva").exception("job failed")
        raise
    finally:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        root.setLevel(old_level)


def bars_off() -> bool:
    """True inside pipeline jobs (:func:`log_to_file` sets ``SVA_PROGRESS_BARS=0``):
    parallel jobs' progress bars would interleave on one console, so jobs report
    progress as log lines (one per video, per epoch) instead. Set
    ``SVA_PROGRESS_BARS=1`` to get the bars back."""
    return os.environ.get("SVA_PROGRESS_BARS", "1") == "0"
