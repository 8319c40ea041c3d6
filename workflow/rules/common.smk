# Validate the whole configuration once, before any job runs (sva/config.py).
from sva.config import validate_config

CFG = validate_config(config, "configuration (params.yaml + --configfile)")
DATASETS = sorted(CFG.datasets)
MODELS = list(CFG.victims.models)
METHODS = list(CFG.attacks.methods)
SHARDS = list(range(CFG.attacks.shards))
TABLE_MODES = {"table3": "untargeted", "table4": "targeted"}


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="|".join(MODELS),
    victim="|".join(MODELS),
    method="|".join(METHODS),
    mode="untargeted|targeted",
    shard=r"\d+",
    table="table3|table4",


def attack_shards(mode):
    """Every shard file one attack table is built from."""
    return expand(
        "results/attacks/{mode}/{dataset}/{victim}/{method}/shard{shard}.json",
        dataset=DATASETS,
        victim=MODELS,
        method=METHODS,
        mode=[mode],
        shard=SHARDS,
    )
