from sva.utils.logs import log_to_file
from sva.pipeline.report import write_results_doc

with log_to_file(snakemake.log[0]):
    write_results_doc(snakemake.output[0], snakemake.input.template, snakemake.input.tables, "results", config=snakemake.config)
