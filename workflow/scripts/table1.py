from sva.pipeline.stages import victims as stages
from sva.pipeline.config import validate_config
from sva.utils.logs import log_to_file

with log_to_file(snakemake.log[0]):
    cfg = validate_config(snakemake.config, "config")
    stages.table1(cfg, snakemake.input.metrics, snakemake.output.table, out_metrics=snakemake.output.metrics)
