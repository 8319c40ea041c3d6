"""The method registry: registration rules, discovery, and a label-only method getting
a label-only oracle through the pipeline's own path."""

from __future__ import annotations

import pytest
import torch

import sva.pipeline.attack_job as job
from sva.attacks import AttackContext, AttackOutcome, attack_classes, build_attack, get_attack
from sva.attacks.base import _REGISTRY, Attack, first_look, register_attack
from sva.attacks.selectors import all_frames
from sva.attacks.settings import UntargetedCfg
from sva.pipeline.config import load_config
from toys import LinearVictim

from conftest import REPO


def test_the_shipped_methods_are_discovered():
    classes = attack_classes()
    assert {"sva", "dense"} <= set(classes)
    for name, cls in classes.items():
        assert cls.name == name and cls.summary()
        assert cls.oracle_mode in ("score", "label")
    with pytest.raises(ValueError, match="unknown attack method 'nosuch'; registered: dense, .*sva"):
        get_attack("nosuch")


@pytest.mark.parametrize("attrs, message", [
    ({"name": "Bad Name"}, "lower-case identifier"),
    ({"name": "eps"}, "key of the attacks config block"),
    ({"name": "sva"}, "taken by sva.attacks.rl.algorithm.SVA"),
    ({"name": "odd", "oracle_mode": "logits"}, "oracle_mode must be"),
    ({"name": "odd", "modes": ("sideways",)}, "modes must be"),
])
def test_registration_refuses_bad_declarations(attrs, message):
    cls = type("Odd", (Attack,), {"run": lambda self, oracle, task: None, **attrs})
    with pytest.raises(TypeError, match=message):
        register_attack(cls)


class LabelProbe(Attack):
    """A label-only toy method: one dense random-sign step, checked by label."""

    name = "label_probe"
    oracle_mode = "label"
    modes = ("untargeted",)
    answers: list = []

    def run(self, oracle, task):
        clean = first_look(oracle, task.x)
        g = task.generator("attack")
        step = torch.sign(torch.randn(task.x.shape, generator=g, device=task.x.device))
        x_adv = (task.x + self.context.eps * step).clamp(0, 1)
        with oracle.phase("check"):
            answer = oracle.query(x_adv)
        LabelProbe.answers.append(answer)
        success = int(answer.labels[0]) != task.label
        mask = all_frames(task.num_frames)
        if not success:
            x_adv, mask = task.x.clone(), ~mask
        return AttackOutcome(x_adv, success, mask, oracle.used, oracle.used_by_phase, 0 if success else None,
                             1 if success else None, clean)


@pytest.fixture
def label_probe():
    register_attack(LabelProbe)
    yield LabelProbe
    _REGISTRY.pop("label_probe")


def test_a_label_method_gets_a_label_oracle_in_the_pipeline(label_probe, monkeypatch):
    cfg = load_config(REPO / ".test" / "config.yaml")
    ctx = AttackContext("untargeted", 0.05, UntargetedCfg(budget=100))
    monkeypatch.setattr(job, "build_method", lambda a, method, mode: build_attack(method, ctx))
    model = LinearVictim(shape=(8, 3, 8, 8), seed=2)
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    label = int(model(x[None]).argmax())
    record, _ = job.attack_video(cfg, "label_probe", "untargeted", model, x, label, None, None, None,
                                 ("toy",), torch.device("cpu"))
    assert record["queries"] == 2 and record["budget"] == 100
    assert LabelProbe.answers and all(a.log_prob is None for a in LabelProbe.answers)
    with pytest.raises(ValueError, match="no probabilities"):
        LabelProbe.answers[0].require_scores()


def test_a_method_refuses_a_mode_it_does_not_support(label_probe):
    with pytest.raises(ValueError, match="does not support mode 'targeted'"):
        build_attack("label_probe", AttackContext("targeted", 0.05, UntargetedCfg()))


def test_a_new_method_is_one_file(tmp_path, monkeypatch):
    """A module dropped under sva/attacks/ registers itself; the config schema then
    accepts its name and its settings block."""
    import sva.attacks as package
    import sva.attacks.base as base
    from sva.pipeline.config import _attacks_model

    (tmp_path / "one_file_method.py").write_text('''
from sva.attacks.base import Attack, register_attack
from sva.utils.settings import PositiveInt, StrictModel


class OneFileCfg(StrictModel):
    tries: PositiveInt = 3


@register_attack
class OneFile(Attack):
    """A method in one file."""

    name = "one_file"
    oracle_mode = "label"
    Settings = OneFileCfg

    def run(self, oracle, task):
        raise NotImplementedError
''')
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    monkeypatch.setattr(base, "_DISCOVERED", False)
    try:
        assert attack_classes()["one_file"].oracle_mode == "label"
        model = _attacks_model()
        cfg = model.model_validate({"methods": ["sva", "one_file"], "one_file": {"tries": 5}})
        assert cfg.one_file.tries == 5 and cfg.methods == ["sva", "one_file"]
    finally:
        _REGISTRY.pop("one_file", None)
        import sys

        sys.modules.pop("sva.attacks.one_file_method", None)
