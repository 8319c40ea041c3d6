"""A method that chooses its settings from a comparison table (SVAL's S from Table 2):
the attack job reads the table from its results folder, or says which file is missing."""

from __future__ import annotations

import pandas as pd
import pytest

from sva.pipeline.attack_job import build_method, tables_hints
from sva.pipeline.config import load_config
from sva.utils.errors import UserError


def test_sval_reads_table_2_from_the_results_folder_of_its_job(repo, tmp_path):
    cfg = load_config(repo / "params.yaml")
    results = tmp_path / "results"
    attack = build_method(cfg.attacks, "sval", "untargeted")
    # SVAL is not a main-run method of params.yaml: Table 2 is the paper target's
    with pytest.raises(UserError, match=r"results/paper/table2\.csv: missing; sval chooses its settings from "
                                        r"tables\.table2"):
        tables_hints(cfg, attack, "untargeted", "synthetic", "lrcn", results)
    rows = list(cfg.tables["table2"].rows.values())
    (results / "paper").mkdir(parents=True)
    fr = [100, 100, 100, 100, 100, 83.3, 50]
    maps = [5.0, 4.0, 3.5, 3.9, 3.0, None, None]
    pd.DataFrame({"row": list(cfg.tables["table2"].rows), "dataset": "synthetic", "victim": "c3d", "method": rows,
                  "MAP": maps, "FR (%)": fr}).to_csv(results / "paper/table2.csv", index=False)
    hints = tables_hints(cfg, attack, "untargeted", "synthetic", "lrcn", results)
    assert hints["sparsity"] == 0.5 and hints["sparsity_choice"]["victim"] == "c3d"
    # a pinned S reads nothing
    assert tables_hints(cfg, build_method(cfg.attacks, "sval_s10", "untargeted"), "untargeted", "synthetic",
                        "c3d", results) == {}


def test_the_reproduction_report_states_the_rules_pick_beside_the_papers(repo, tmp_path):
    from sva.pipeline.report import sval_choice

    cfg = load_config(repo / "params.yaml")
    rows = list(cfg.tables["table2"].rows.values())
    (tmp_path / "paper").mkdir()
    pd.DataFrame({"row": list(cfg.tables["table2"].rows), "dataset": "synthetic", "victim": "c3d", "method": rows,
                  "MAP": [5.0, 4.0, 3.5, 3.9, 3.0, None, None], "FR (%)": [100, 100, 100, 100, 100, 83.3, 50]}
                 ).to_csv(tmp_path / "paper/table2.csv", index=False)
    lines = sval_choice(tmp_path, cfg)
    assert lines[0] == "## SVAL's sparsity (Table 2's rule)"
    assert "untargeted, synthetic/c3d" in lines[2] and "the rule picks **S = 0.5**" in lines[2]
    assert "the paper picked S = 0.5" in lines[2]
    assert sval_choice(tmp_path / "nothing", cfg) == []
