from sva.pipeline.stages import attacks as stages
from sva.pipeline.config import validate_config
from sva.utils.logs import log_to_file

with log_to_file(snakemake.log[0]):
    cfg = validate_config(snakemake.config, "config")
    wc = snakemake.wildcards
    stages.attack_shard(
        cfg,
        wc.dataset,
        wc.victim,
        wc.method,
        wc.mode,
        int(wc.shard),
        snakemake.input.attack_set,
        snakemake.params.snippets_dir,
        snakemake.input.features,
        snakemake.input.ckpt,
        snakemake.output[0],
        threads=snakemake.threads,
        results=snakemake.params.results,
    )
