# SVA workbench pipeline: download → snippets → features / victims (Table 1) → attack
# sets → sharded attacks → Tables 3 and 4 → docs/results.md.
# Rules live in workflow/rules/*.smk, logic in the `sva` package; see README.md and
# docs/design.md ("Results never go stale": every rule gets `params: key`).
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/victims.smk"
include: "workflow/rules/attack_set.smk"
include: "workflow/rules/attacks.smk"
include: "workflow/rules/results_doc.smk"


# The main run builds everything; a study (--config study=<name>) its own tables only.
rule all:
    default_target: True
    input:
        study_tables()
        if STUDY
        else [
            "results/table1.csv",
            *study_tables(),
            *expand("results/attack_sets/{dataset}.csv", dataset=DATASETS),
            *expand("data/features/{dataset}/features.npy", dataset=DATASETS),
            "docs/results.md",
        ],


# Every table and figure the configuration defines, beyond `all`: the comparison tables
# of `tables` (Table 2, SVAL's sparsity grid; Table 5, the reward ablation; Figs. 3 and
# 7-10) and the reproduction report.
rule paper:
    input:
        rules.all.input,
        paper_tables(),
        [] if STUDY else f"results/{layout.PAPER}/reproduction.md",


rule data:
    input:
        expand("data/snippets/{dataset}/index.csv", dataset=DATASETS),
        expand("data/features/{dataset}/features.npy", dataset=DATASETS),


rule attack_sets:
    input:
        expand("results/attack_sets/{dataset}.csv", dataset=DATASETS),
