"""The base of every settings block: strict (unknown keys are errors), frozen pydantic
models. Each layer declares its own blocks; :mod:`sva.pipeline.config` composes them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
