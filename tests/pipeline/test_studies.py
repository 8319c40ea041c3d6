"""Named studies: what a study file may change, and where its results go."""

from __future__ import annotations

import pytest
import yaml

from sva.pipeline.config import ConfigError, deep_merge, validate_config
from sva.pipeline.studies import apply_study, available_studies, logs_dir, results_dir


@pytest.fixture
def root(tmp_path):
    (tmp_path / "config/studies").mkdir(parents=True)
    return tmp_path


def _main(repo):
    return yaml.safe_load((repo / "params.yaml").read_text())


def test_no_study_is_the_main_run(repo):
    config = _main(repo)
    cfg, name = apply_study(config, "params.yaml", repo)
    assert name is None and cfg.study is None
    assert (results_dir(None), logs_dir(None)) == ("results", "logs")


def test_a_study_merges_its_attack_settings_and_tracks_apart(repo, root):
    (root / "config/studies/short.yaml").write_text("description: fewer episodes\nattacks:\n  sva:\n    episodes: 2\n")
    config = {**_main(repo), "study": "short"}
    cfg, name = apply_study(config, "params.yaml", root)
    assert name == "short" and cfg.study == "short"
    assert cfg.attacks.sva.episodes == 2 and cfg.attacks.sva.epochs == 2  # merged, siblings kept
    assert config["attacks"]["sva"]["episodes"] == 2  # the jobs see it too
    assert cfg.tracking.experiment_prefix == "sva-short"
    assert results_dir(name) == "results/studies/short" and logs_dir(name) == "logs/studies/short"
    assert available_studies(root) == ["short"]


def test_the_shipped_studies_validate(repo):
    assert "long_episodes" in available_studies(repo)
    for name in available_studies(repo):
        apply_study({**_main(repo), "study": name}, "params.yaml", repo)


@pytest.mark.parametrize("estimator", ["sign_opt", "zo_signsgd"])
def test_the_fig9_estimator_studies_change_only_the_untargeted_estimator(repo, estimator):
    """§4.5.4 / Fig. 9: SVA with another gradient estimator, same budget as the main
    run's (NES) SVA, also over the paper's configuration."""
    for extra in ([], ["config/paper.yaml"]):
        config = _main(repo)
        for f in extra:
            config = deep_merge(config, yaml.safe_load((repo / f).read_text()))
        main = validate_config(config, "params.yaml")
        cfg, _ = apply_study({**config, "study": f"estimator_{estimator}"}, "params.yaml", repo)
        assert cfg.attacks.methods == ["sva"] and cfg.attacks.modes == ["untargeted"]
        assert cfg.attacks.untargeted.estimator == estimator and main.attacks.untargeted.estimator == "nes"
        assert cfg.attacks.untargeted.model_dump(exclude={"estimator"}) == \
            main.attacks.untargeted.model_dump(exclude={"estimator"})
        assert cfg.attacks.sva == main.attacks.sva


def test_the_l2_baselines_study_changes_only_the_geometry_of_opt_and_heuristic(repo):
    """docs/baselines.md, "L2 geometry": Opt-attack and Heuristic-attack in L2 geometry,
    untargeted, every other setting (budget, ε, their blocks) the main run's."""
    for extra in ([], ["config/paper.yaml"]):
        config = _main(repo)
        for f in extra:
            config = deep_merge(config, yaml.safe_load((repo / f).read_text()))
        main = validate_config(config, "params.yaml")
        cfg, name = apply_study({**config, "study": "baselines_l2"}, "params.yaml", repo)
        assert name == "baselines_l2" and results_dir(name) == "results/studies/baselines_l2"
        assert cfg.attacks.methods == ["opt", "heuristic"] and cfg.attacks.modes == ["untargeted"]
        assert cfg.attacks.eps == main.attacks.eps and cfg.attacks.untargeted == main.attacks.untargeted
        for method in ("opt", "heuristic"):
            ours, theirs = cfg.attacks.method_cfg(method), main.attacks.method_cfg(method)
            assert (ours.geometry, theirs.geometry) == ("l2", "linf")
            assert ours.model_dump(exclude={"geometry"}) == theirs.model_dump(exclude={"geometry"})


@pytest.mark.parametrize("text, message", [
    ("victims:\n  models: [c3d]\n", r"short\.yaml: victims: a study overrides attacks\.\* only"),
    ("attacks:\n  eps: 7\n", r"attacks\.eps"),
    ("- a list\n", "top level must be a mapping"),
])
def test_a_study_that_would_touch_the_main_run_is_refused(repo, root, text, message):
    (root / "config/studies/short.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        apply_study({**_main(repo), "study": "short"}, "params.yaml", root)


def test_unknown_and_malformed_names(repo, root):
    with pytest.raises(ConfigError, match=r"no such study file \(studies: none\)"):
        apply_study({**_main(repo), "study": "nope"}, "params.yaml", root)
    with pytest.raises(ConfigError, match="letters, digits"):
        apply_study({**_main(repo), "study": "../x"}, "params.yaml", root)


def test_the_episode_scope_study_changes_only_the_budget_scope(repo):
    """The paper's reading of the budget (each episode gets all of it), beside the
    main run's (the budget bounds the video's every query)."""
    main = validate_config(_main(repo), "params.yaml")
    cfg, _ = apply_study({**_main(repo), "study": "episode_scope"}, "params.yaml", repo)
    assert main.attacks.budget_scope == "video" and cfg.attacks.budget_scope == "episode"
    assert cfg.attacks.methods == ["sva"] and cfg.attacks.modes == ["untargeted"]
    assert cfg.attacks.sva == main.attacks.sva and cfg.attacks.untargeted == main.attacks.untargeted


def test_the_reward_ablation_study_gives_the_agent_more_updates_and_the_budget_they_cost(repo):
    """Table 5's arms with 6 epochs of the main run's episodes: every arm's schedule is
    SVA's with more epochs, and the video budget pays for all of them."""
    main = validate_config(_main(repo), "params.yaml")
    cfg, _ = apply_study({**_main(repo), "study": "reward_ablation"}, "params.yaml", repo)
    a = cfg.attacks
    assert a.methods == ["dense", "sva_r_attack", "sva_r_attack_rep", "sva", "sva_gamma2_1"]
    assert a.modes == ["untargeted"] and a.sva.epochs == 6 and main.attacks.sva.epochs == 2
    assert a.sva.model_dump(exclude={"epochs"}) == main.attacks.sva.model_dump(exclude={"epochs"})
    episode = a.sva.untargeted.episode_queries
    assert a.untargeted.budget == a.sva.epochs * a.sva.episodes * episode
    for arm in a.methods[1:]:
        assert a.method_cfg(arm).epochs == 6, arm
