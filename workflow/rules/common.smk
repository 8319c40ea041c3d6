# Validate the whole configuration once, before any job runs (sva/config.py).
from sva.config import validate_config

CFG = validate_config(config, "configuration (params.yaml + --configfile)")
DATASETS = sorted(CFG.datasets)
MODELS = list(CFG.victims.models)


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="|".join(MODELS),
