# SVA workbench pipeline: download → snippets → features / victims (Table 1) → attack
# sets → sharded attacks → Tables 3 and 4.
# Rules live in workflow/rules/*.smk, logic in the `sva` package; see README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/victims.smk"
include: "workflow/rules/attack_set.smk"
include: "workflow/rules/attacks.smk"


rule all:
    default_target: True
    input:
        "results/table1.csv",
        "results/table3.csv",
        ["results/table4.csv"] if "targeted" in CFG.attacks.modes else [],
        expand("results/attack_sets/{dataset}.csv", dataset=DATASETS),
        expand("data/features/{dataset}/features.npy", dataset=DATASETS),


rule data:
    input:
        expand("data/snippets/{dataset}/index.csv", dataset=DATASETS),
        expand("data/features/{dataset}/features.npy", dataset=DATASETS),


rule attack_sets:
    input:
        expand("results/attack_sets/{dataset}.csv", dataset=DATASETS),
