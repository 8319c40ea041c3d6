import pytest
import yaml

from sva.pipeline.config import ConfigError, deep_merge, load_config, validate_config


def test_default_params_validate(repo):
    cfg = load_config(repo / "params.yaml")
    assert "synthetic" in cfg.datasets
    assert cfg.datasets["synthetic"].kind == "synthetic"
    assert set(cfg.victims.models) == {"c3d", "lrcn"}


def test_paper_config_switches_to_real_datasets(repo):
    cfg = load_config(repo / "params.yaml", repo / "config" / "paper.yaml")
    assert sorted(cfg.datasets) == ["hmdb51", "ucf101"]
    assert cfg.snippets.crop == (112, 112) and cfg.snippets.resize == (128, 171)
    assert cfg.victims.c3d.train.lr == 1e-5 and cfg.victims.c3d.train.epochs == 30
    assert cfg.datasets["ucf101"].attack_set_size == 100
    assert cfg.datasets["hmdb51"].attack_set_size == 50


def test_every_shipped_override_validates(repo):
    files = sorted((repo / "config").glob("*.yaml"))
    assert len(files) >= 2
    for f in files:
        load_config(repo / "params.yaml", f)
    targeted = load_config(repo / "params.yaml", repo / "config" / "targeted.yaml")
    assert targeted.attacks.modes == ["untargeted", "targeted"]


def _default(repo):
    return yaml.safe_load((repo / "params.yaml").read_text())


def test_unknown_key_is_named(repo):
    data = _default(repo)
    data["victims"]["c3d"]["widht_mult"] = 2
    with pytest.raises(ConfigError, match=r"victims\.c3d\.widht_mult: unknown key"):
        validate_config(data, "params.yaml")


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("victims", "c3d", "train", "lr"), -1.0, r"victims\.c3d\.train\.lr: .*greater than 0"),
        (("datasets", "synthetic", "synthetic", "height"), 31, r"height: .*even"),
        (("datasets", "synthetic", "split"), 4, r"datasets\.synthetic\.split"),
        (("snippets", "on_bad_video"), "ignore", r"snippets\.on_bad_video"),
        (("victims", "models"), ["c3d", "i3d"], r"victims\.models\.1"),
    ],
)
def test_bad_values_are_named(repo, path, value, message):
    data = _default(repo)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(data, "params.yaml")


def test_error_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="missing.yaml: configuration file not found"):
        load_config(tmp_path / "missing.yaml")


def test_real_dataset_requires_download_section(repo):
    data = _default(repo)
    data["datasets"]["ucf"] = {"kind": "ucf101"}
    with pytest.raises(ConfigError, match="needs a 'download' section"):
        validate_config(data)


def test_all_datasets_disabled_is_an_error(repo):
    data = _default(repo)
    data["datasets"]["synthetic"] = None
    with pytest.raises(ConfigError, match="at least one dataset"):
        validate_config(data)


def test_deep_merge_keeps_siblings():
    merged = deep_merge({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}})
    assert merged == {"a": {"b": 5, "c": 2}, "d": 3}


@pytest.mark.parametrize("mode", ["untargeted", "targeted"])
def test_a_budget_below_one_attack_step_is_a_config_error(repo, mode):
    data = _default(repo)
    data["attacks"]["variants"], data["tables"] = {}, {}  # (a variant's estimator may need more)
    block = data["attacks"][mode]
    block["budget"] = 10
    pop = block["population"]
    need = 1 + pop + 1 if mode == "untargeted" else 1 + block["init_candidates"] + pop + 2
    with pytest.raises(ConfigError, match=rf"attacks: {mode}\.budget: 10 queries .* smallest workable budget is {need}\b"):
        validate_config(data, "params.yaml")
    block["budget"] = need  # exactly one step fits
    validate_config(data, "params.yaml")


def test_an_episode_cap_below_one_step_is_a_config_error(repo):
    data = _default(repo)
    data["attacks"]["sva"]["untargeted"]["episode_queries"] = 20
    with pytest.raises(ConfigError, match=r"sva\.untargeted\.episode_queries: 20 .* smallest workable episode cap is 49"):
        validate_config(data, "params.yaml")


def test_the_estimator_is_a_setting_of_each_mode(repo):
    data = _default(repo)
    data["attacks"]["untargeted"].update(estimator="zo_signsgd", population=47)
    cfg = validate_config(data, "params.yaml")
    assert cfg.attacks.min_budget("untargeted") == 1 + 48 + 1  # 47 directions + the current point
    data["attacks"]["untargeted"]["estimator"] = "nes"
    with pytest.raises(ConfigError, match=r"untargeted: .*NES draws antithetic pairs, so it must be even \(got 47\)"):
        validate_config(data, "params.yaml")


@pytest.mark.parametrize("mode", ["untargeted", "targeted"])
def test_sign_opt_is_an_estimator_choice_of_each_mode(repo, mode):
    """attacks.<mode>.estimator: sign_opt (§4.5.4, Fig. 9) validates with any population,
    builds the perturber with Sign-OPT's estimate, and budgets its extra query; a
    misspelt name is an error naming the key and the choices."""
    from sva.attacks.perturber import SparsePerturber, estimator_of
    from sva.attacks.settings import AttackContext
    from sva.blackbox.estimators import SignOPT

    data = _default(repo)
    data["attacks"]["modes"] = ["untargeted", "targeted"]
    data["attacks"][mode].update(estimator="sign_opt", population=47, sigma=1e-4)
    cfg = validate_config(data, "params.yaml")
    block = getattr(cfg.attacks, mode)
    est = estimator_of(block)
    assert isinstance(est, SignOPT) and (est.population, est.sigma) == (47, 1e-4)
    assert est.queries_per_estimate == 48  # 47 directions + the current point
    perturber = SparsePerturber(AttackContext(mode, cfg.attacks.eps, block))
    assert isinstance(perturber.attack.estimator, SignOPT)
    assert perturber.step_cost == 48 + (1 if mode == "untargeted" else 2)
    start = 1 if mode == "untargeted" else 1 + block.init_candidates
    assert cfg.attacks.min_budget(mode) == start + 48 + (1 if mode == "untargeted" else 2)
    data["attacks"][mode]["estimator"] = "signopt"
    with pytest.raises(ConfigError, match=rf"attacks\.{mode}\.estimator: Input should be 'nes', 'zo_signsgd' or "
                                          r"'sign_opt' \(got 'signopt'\)"):
        validate_config(data, "params.yaml")


def test_methods_come_from_the_registry(repo):
    """The allowed method names are the registered attacks; each has its own block."""
    from sva.attacks import attack_classes

    data = _default(repo)
    data["attacks"]["methods"] = ["sva", "nosuch"]
    with pytest.raises(ConfigError, match=r"attacks: methods: 'nosuch' not a registered method or a variant "
                       r"\(have " + ", ".join(attack_classes())):
        validate_config(data, "params.yaml")
    data["attacks"]["methods"] = ["dense"]
    data["attacks"]["dense"] = {"epochs": 3}  # dense has no settings of its own
    with pytest.raises(ConfigError, match=r"attacks\.dense\.epochs: unknown key"):
        validate_config(data, "params.yaml")


def test_the_shipped_json_schema_is_current(repo):
    """workflow/schemas/config.schema.json is what `sva schema` prints today (rerun
    `.venv/bin/sva schema > workflow/schemas/config.schema.json` after a schema change)."""
    import json

    from sva.pipeline.config import json_schema

    shipped = (repo / "workflow/schemas/config.schema.json").read_text()
    assert shipped == json_schema()
    schema = json.loads(shipped)
    assert "attacks" in schema["properties"] and "AttacksCfg" in schema["$defs"]


# ------------------------------------------------------------------ variants and tables
def test_a_variant_is_its_base_block_with_the_overrides(repo):
    data = _default(repo)
    data["attacks"]["sva"]["gamma1"] = 1.5
    data["attacks"]["variants"]["sva_x"] = {"method": "sva", "settings": {"rewards": "attack"},
                                            "untargeted": {"population": 24}}
    data["attacks"]["methods"] = ["sva", "dense", "sva_x"]
    a = validate_config(data, "params.yaml").attacks
    assert a.base_method("sva_x") == "sva" and a.base_method("sva") == "sva"
    v = a.method_cfg("sva_x")
    assert v.rewards == "attack" and v.gamma1 == 1.5  # the configured sva block, overridden
    assert a.method_cfg("sva").rewards == "full"
    assert a.mode_cfg("untargeted", "sva_x").population == 24 and a.mode_cfg("untargeted").population == 48
    assert a.mode_cfg("targeted", "sva_x") == a.targeted
    assert a.context("untargeted", "sva_x").mode_cfg.population == 24
    assert "sva_x" in a.method_names() and "opt" in a.method_names()


@pytest.mark.parametrize("variant, message", [
    ({"method": "nope"}, r"variants\.v\.method: 'nope' is not a registered method"),
    ({"method": "sva", "settings": {"rewardz": "attack"}}, r"variants\.v\.settings\.rewardz: unknown key"),
    ({"method": "sva", "settings": {"rewards": "div"}}, r"variants\.v\.settings\.rewards: Input should be"),
    ({"method": "sva", "untargeted": {"population": 3}}, r"variants\.v\.untargeted: population"),
    ({"method": "sva", "untargeted": {"budget": 10}}, r"variants\.v\.untargeted\.budget: 10 queries cannot"),
])
def test_bad_variants_are_named(repo, variant, message):
    data = _default(repo)
    data["attacks"]["variants"]["v"] = variant
    with pytest.raises(ConfigError, match=message):
        validate_config(data, "params.yaml")


def test_a_variant_cannot_take_a_registered_name_and_methods_must_exist(repo):
    data = _default(repo)
    data["attacks"]["variants"]["dense"] = {"method": "sva"}
    with pytest.raises(ConfigError, match=r"variants\.dense: 'dense' is a registered method"):
        validate_config(data, "params.yaml")
    data = _default(repo)
    data["attacks"]["methods"] = ["sva", "svaa"]
    with pytest.raises(ConfigError, match=r"methods: 'svaa' not a registered method or a variant"):
        validate_config(data, "params.yaml")


def test_shipped_table5_rows_are_the_papers_arms(repo):
    cfg = load_config(repo / "params.yaml")
    t = cfg.tables["table5"]
    assert t.mode == "untargeted" and t.victims == ["c3d"]  # §4.5.1: untargeted, C3D
    methods = list(t.rows.values())
    assert methods[0] == "dense" and methods[-1] == "sva"
    assert [cfg.attacks.method_cfg(m).rewards for m in methods[1:]] == ["attack", "attack+rep", "full"]
    # Fig. 9: the same SVA with each estimator; Fig. 7: SVA against random frames
    fig9 = list(cfg.tables["fig9"].rows.values())
    assert [cfg.attacks.mode_cfg("untargeted", m).estimator for m in fig9] == ["nes", "zo_signsgd", "sign_opt"]
    assert all(cfg.attacks.base_method(m) == "sva" for m in fig9)
    assert list(cfg.tables["fig7"].rows.values()) == ["sva", "random"]
    # Fig. 3: one value below and one above the paper's γ2 = 3, γ1 = 2, ε = 0.05
    a = cfg.attacks
    assert [a.method_cfg(m).gamma2 for m in cfg.tables["fig3_gamma2"].rows.values()] == [1.0, 3.0, 5.0]
    assert [a.method_cfg(m).gamma1 for m in cfg.tables["fig3_gamma1"].rows.values()] == [1.0, 2.0, 3.0]
    assert [a.eps_of(m) for m in cfg.tables["fig3_eps"].rows.values()] == [0.03, 0.05, 0.07]
    assert [a.context("untargeted", m).eps for m in cfg.tables["fig3_eps"].rows.values()] == [0.03, 0.05, 0.07]
    # every ablation is untargeted on C3D (§4.5); table3_sval is Table 3 with SVAL, on both victims
    assert all(t.victims == ["c3d"] and t.mode == "untargeted" for n, t in cfg.tables.items() if n != "table3_sval")
    assert cfg.tables["table3_sval"].victims is None


@pytest.mark.parametrize("change, message", [
    (lambda t: t["rows"].update({"X": "svaa"}), r"tables\.table5\.rows: 'svaa' not a registered method"),
    (lambda t: t.update(victims=["i3d"]), r"tables\.table5\.victims: 'i3d' not in victims\.models"),
    (lambda t: t.update(mode="sideways"), r"tables\.table5\.mode"),
    (lambda t: t.update(rows={}), r"tables\.table5\.rows: at least one row"),
])
def test_bad_tables_are_named(repo, change, message):
    data = _default(repo)
    change(data["tables"]["table5"])
    with pytest.raises(ConfigError, match=message):
        validate_config(data, "params.yaml")


def test_a_table_cannot_take_a_main_output_name(repo):
    data = _default(repo)
    data["tables"]["table3"] = {"rows": {"SVA": "sva"}}
    with pytest.raises(ConfigError, match=r"tables\.table3: a table's name .* none of table1, table3, table4"):
        validate_config(data, "params.yaml")


def test_a_table_row_may_depend_on_a_method_that_is_no_row(repo):
    """A comparison table's DAG runs a row's dependency (random and SVA_opt read SVA's
    records) without making it a row; Tables 3 and 4 must show it."""
    data = _default(repo)
    data["tables"]["fig8"]["rows"] = {"H_opt": "heuristic", "SVA_opt": "sva_opt"}
    cfg = validate_config(data, "params.yaml")
    assert "sva" not in cfg.tables["fig8"].rows.values()
    data["attacks"]["methods"] = ["sva_opt"]
    with pytest.raises(ConfigError, match=r"methods: 'sva_opt' needs 'sva' too"):
        validate_config(data, "params.yaml")


def test_sva_opt_has_the_heuristic_attacks_settings(repo):
    """Fig. 8: SVA_opt and H_opt "have the same parameter settings" (§4.5.3), in the
    embedded and the paper configuration."""
    for extra in ([], [repo / "config" / "paper.yaml"]):
        cfg = load_config(repo / "params.yaml", *extra)
        assert cfg.attacks.sva_opt.model_dump() == cfg.attacks.heuristic.model_dump()


def test_videos_limit_applies_only_to_methods_no_main_table_or_dependency_needs(repo):
    data = _default(repo)
    data["attacks"]["methods"] = ["dense"]
    data["tables"] = {
        "a": {"rows": {"Random": "random", "R": "sva_r_attack"}, "videos": 2},
        "b": {"rows": {"R": "sva_r_attack", "G": "sva_gamma2_1"}, "videos": 4},
        "c": {"rows": {"G": "sva_gamma2_1"}},
    }
    cfg = validate_config(data, "params.yaml")
    assert cfg.videos_limit("dense") is None  # Table 3 shows it: every video
    assert cfg.videos_limit("random") == 2
    assert cfg.videos_limit("sva_r_attack") == 4  # the most any table using it wants
    assert cfg.videos_limit("sva_gamma2_1") is None  # table c wants every video
    assert cfg.videos_limit("sva") is None  # random reads its records of every video it attacks
    from sva.pipeline.config import limit_videos

    assert limit_videos(["c", "a", "b"], 2) == ["a", "b"] and limit_videos(["b", "a"], None) == ["a", "b"]


def test_the_paper_config_runs_the_ablations_on_20_videos(repo):
    cfg = load_config(repo / "params.yaml", repo / "config" / "paper.yaml")
    assert {name: t.videos for name, t in cfg.tables.items()} == {name: 3 if name == "fig10" else 20
                                                                  for name in cfg.tables}
    # Fig. 10's arm is the paper's SVA itself (20 epochs of whole-budget episodes)
    assert cfg.attacks.method_cfg("sva_convergence") == cfg.attacks.sva


def test_sval_chooses_its_sparsity_from_a_configured_grid_of_its_mode(repo):
    cfg = load_config(repo / "params.yaml")
    assert cfg.table_reads("sval", "untargeted") == ["table2"] and cfg.table_reads("sval_s10", "untargeted") == []
    t2 = cfg.tables["table2"]
    assert [cfg.attacks.method_cfg(m).untargeted.sparsity for m in t2.rows.values()] == \
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert t2.map_only_at_full_fr and "sval" in cfg.tables["table3_sval"].rows.values()
    for change, message in (
        (lambda d: d["attacks"]["sval"]["untargeted"].update(grid=None),
         r"sval\.untargeted\.grid: needed with sparsity 'auto'"),
        (lambda d: d["tables"].pop("table2"), r"sval \(untargeted\) chooses its settings from tables\.table2, "
         "which is not configured"),
        (lambda d: d["tables"]["table2"].update(mode="targeted"), r"tables\.table2, whose mode is targeted"),
        (lambda d: d["tables"]["table2"]["rows"].update(auto="sval"), r"a cycle"),
    ):
        data = _default(repo)
        change(data)
        with pytest.raises(ConfigError, match=message):
            validate_config(data, "params.yaml")


def test_a_null_table_drops_one_an_earlier_file_defined(repo):
    data = deep_merge(_default(repo), {"tables": {"fig10": None}})
    assert "fig10" not in validate_config(data, "params.yaml").tables


def test_job_priority_puts_the_longest_expected_jobs_first(repo):
    """Hard-label methods (a failure spends the whole budget) get priority 2, SVA (every
    epoch, success or not) and its variants 1, the methods that stop at their first
    success 0 (the workflow's attack_shard priority)."""
    from sva.attacks import attack_classes

    cfg = load_config(repo / "params.yaml")
    for method in ("opt", "heuristic", "sign_opt", "sva_opt"):
        assert cfg.job_priority(method) == 2, method
    assert cfg.job_priority("sva") == 1
    assert cfg.job_priority("sva_r_attack") == 1  # a variant of SVA
    for method in ("dense", "sval", "random"):
        assert cfg.job_priority(method) == 0
    assert [n for n, c in attack_classes().items() if c.runs_full_schedule] == ["sva"]
    assert sorted(n for n, c in attack_classes().items() if c.oracle_mode == "label") == [
        "heuristic", "opt", "sign_opt", "sva_opt"]
