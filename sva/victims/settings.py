"""Settings of the victims: architectures and training (validated by the pipeline's config,
:mod:`sva.pipeline.config`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sva.utils.settings import PositiveFloat, PositiveInt, StrictModel

class TrainCfg(StrictModel):
    """Victim training (paper §4.1: Adam, lr 1e-5, ×0.1 after 20 of 30 epochs)."""

    epochs: PositiveInt = 30
    lr: PositiveFloat = 1e-5
    lr_step_epoch: PositiveInt = 20
    lr_gamma: PositiveFloat = 0.1
    batch_size: PositiveInt = 32
    weight_decay: Annotated[float, Field(ge=0)] = 0.0


class C3DCfg(StrictModel):
    width_mult: PositiveFloat = 1.0
    batchnorm: bool = False
    fc_dim: PositiveInt = 4096
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5
    train: TrainCfg = TrainCfg()


class LRCNCfg(StrictModel):
    backbone: Literal["inception_v3", "small_cnn"] = "inception_v3"
    backbone_width: PositiveInt = 32  # small_cnn only
    hidden: PositiveInt = 256
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5
    train: TrainCfg = TrainCfg()


class VictimsCfg(StrictModel):
    models: list[Literal["c3d", "lrcn"]] = ["c3d", "lrcn"]
    c3d: C3DCfg = C3DCfg()
    lrcn: LRCNCfg = LRCNCfg()
