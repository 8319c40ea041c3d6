from sva.pipeline.stages import attacks as stages
from sva.pipeline.config import validate_config
from sva.utils.logs import log_to_file

with log_to_file(snakemake.log[0]):
    cfg = validate_config(snakemake.config, "config")
    stages.ablation_table(
        cfg,
        snakemake.wildcards.ablation,
        snakemake.input.shards,
        snakemake.output.table,
        snakemake.output.figure,
        attack_set_csvs=snakemake.input.attack_sets,
        ckpt_paths=snakemake.input.ckpts,
        out_rewards_png=snakemake.output.rewards,
    )
