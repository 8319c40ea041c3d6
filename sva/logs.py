"""Logging set-up shared by the CLI and the pipeline's scripts."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def log_to_file(path: str | Path | None, level: int = logging.INFO) -> Iterator[None]:
    """Send ``logging`` records to ``path`` (and stderr) for the duration of a job.

    An uncaught exception is written to the log with its traceback before it propagates,
    so ``logs/…`` explains every failed job.
    """
    root = logging.getLogger()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w", encoding="utf-8"))
    for h in handlers:
        h.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(h)
    old_level = root.level
    root.setLevel(level)
    logging.captureWarnings(True)
    try:
        yield
    except BaseException:
        logging.getLogger("sva").exception("job failed")
        raise
    finally:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        root.setLevel(old_level)
