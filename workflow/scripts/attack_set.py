from sva.pipeline.stages import attack_set as stages
from sva.pipeline.config import validate_config
from sva.utils.logs import log_to_file

with log_to_file(snakemake.log[0]):
    cfg = validate_config(snakemake.config, "config")
    stages.attack_set(
        cfg, snakemake.wildcards.dataset, snakemake.params.snippets_dir, snakemake.input.ckpts, snakemake.output[0]
    )
