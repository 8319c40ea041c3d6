from sva.pipeline.stages import victims as stages
from sva.pipeline.config import validate_config
from sva.utils.logs import log_to_file

with log_to_file(snakemake.log[0]):
    cfg = validate_config(snakemake.config, "config")
    stages.train_victim(
        cfg,
        snakemake.wildcards.dataset,
        snakemake.wildcards.model,
        snakemake.params.snippets_dir,
        snakemake.output.ckpt,
        snakemake.output.metrics,
        threads=snakemake.threads,
    )
