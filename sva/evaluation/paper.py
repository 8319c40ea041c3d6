"""The paper's reported numbers (Tables 1, 3 and 4), read from ``paper_numbers.yaml``
beside this module, the one place they are written down."""

from __future__ import annotations

import functools
from importlib import resources

import yaml


@functools.lru_cache(maxsize=1)
def paper_numbers() -> dict:
    """The parsed data file: ``{"table1": {kind: {victim: acc %}}, "table3"/"table4":
    {kind: {victim: {method: {"MAP", "S", "Q", "FR"}}}}}``."""
    return yaml.safe_load(resources.files("sva.evaluation").joinpath("paper_numbers.yaml").read_text())


def paper_accuracy(kind: str, victim: str) -> float | None:
    """Table 1: the paper's test accuracy (%) of ``victim`` on dataset kind ``kind``."""
    return paper_numbers()["table1"].get(kind, {}).get(victim)


def paper_attack_row(kind: str, victim: str, method: str, mode: str) -> dict | None:
    """Table 3 (``untargeted``) or 4 (``targeted``): ``{"MAP", "S", "Q", "FR"}`` (values
    ``None`` where the paper prints "-"), or ``None`` when the paper has no such row."""
    table = "table3" if mode == "untargeted" else "table4"
    return paper_numbers()[table].get(kind, {}).get(victim, {}).get(method)
