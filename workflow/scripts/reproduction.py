from sva.utils.logs import log_to_file
from sva.pipeline.report import write_reproduction

with log_to_file(snakemake.log[0]):
    write_reproduction(snakemake.output[0], "results", config=snakemake.config)
