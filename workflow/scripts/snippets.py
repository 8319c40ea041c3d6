from sva.pipeline.stages import data as stages
from sva.pipeline.config import validate_config
from sva.utils.logs import log_to_file

with log_to_file(snakemake.log[0]):
    cfg = validate_config(snakemake.config, "config")
    stages.snippets(cfg, snakemake.wildcards.dataset, snakemake.params.raw_dir, snakemake.params.out_dir)
