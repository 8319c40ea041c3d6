# SVA workbench pipeline: download → snippets → features / victims → Table 1 → attack sets.
# Rules live in workflow/rules/*.smk, logic in the `sva` package; see README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/victims.smk"
include: "workflow/rules/attack_set.smk"


rule all:
    default_target: True
    input:
        "results/table1.csv",
        expand("results/attack_sets/{dataset}.csv", dataset=DATASETS),
        expand("data/features/{dataset}/features.npy", dataset=DATASETS),
