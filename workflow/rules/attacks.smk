rule attack_shard:
    input:
        attack_set="results/attack_sets/{dataset}.csv",
        index="data/snippets/{dataset}/index.csv",
        frames="data/snippets/{dataset}/frames.npy",
        features="data/features/{dataset}/features.npy",
        ckpt="results/victims/{dataset}/{victim}.pt",
        depends_on=dependency_shards,
    output:
        f"{OUT}/attacks/{{mode}}/{{dataset}}/{{victim}}/{{method,{MAIN_METHOD_RE}}}/shard{{shard}}.json",
    log:
        f"{LOGS}/attack/{{mode}}/{{dataset}}/{{victim}}/{{method}}/shard{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/attack_shard/{{mode}}/{{dataset}}/{{victim}}/{{method}}/shard{{shard}}.tsv"
    priority: attack_priority
    conda:
        "../envs/sva.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        key=key("attack_shard"),
        snippets_dir=subpath(input.index, parent=True),
        # the results folder the methods it depends on and the tables it reads are in
        results=lambda wc: OUT,
    script:
        "../scripts/attack_shard.py"


# The methods only comparison tables run (`paper` target): the same job, its records
# under results/paper/ (sva/pipeline/layout.py), so the main run's folder stays its own.
use rule attack_shard as paper_shard with:
    output:
        f"{PAPER_OUT}/attacks/{{mode}}/{{dataset}}/{{victim}}/{{method,{PAPER_METHOD_RE}}}/shard{{shard}}.json",


rule attack_table:
    input:
        shards=lambda wc: attack_shards(TABLE_MODES[wc.table]),
        attack_sets=expand("results/attack_sets/{dataset}.csv", dataset=DATASETS),
        ckpts=expand(
            "results/victims/{dataset}/{model}.pt", dataset=DATASETS, model=MODELS
        ),
    output:
        table=report(
            f"{OUT}/{{table}}.csv",
            caption="../report/attack_table.rst",
            category="Tables",
        ),
        figure=report(
            f"{OUT}/figures/{{table}}.png",
            caption="../report/attack_figure.rst",
            category="Figures",
        ),
        examples=report(
            f"{OUT}/figures/{{table}}_examples.png",
            caption="../report/attack_examples.rst",
            category="Example strips",
        ),
        metrics=f"{OUT}/metrics/{{table}}.json",
        curves=report(
            f"{OUT}/{{table}}_curves.csv",
            caption="../report/budget_curves.rst",
            category="Tables",
        ),
        curves_figure=report(
            f"{OUT}/figures/{{table}}_curves.png",
            caption="../report/budget_curves.rst",
            category="Figures",
        ),
    log:
        f"{LOGS}/attack_table/{{table}}.log",
    conda:
        "../envs/sva.yaml"
    params:
        key=key("attack_table"),
        mode=lambda wc: TABLE_MODES[wc.table],
    script:
        "../scripts/attack_table.py"


rule ablation_table:
    input:
        shards=lambda wc: ablation_shards(wc.ablation),
        attack_sets=expand("results/attack_sets/{dataset}.csv", dataset=DATASETS),
        ckpts=expand(
            "results/victims/{dataset}/{model}.pt", dataset=DATASETS, model=MODELS
        ),
    output:
        table=report(
            f"{PAPER_OUT}/{{ablation,{PAPER_TABLE_RE}}}.csv",
            caption="../report/ablation_table.rst",
            category="Tables",
        ),
        figure=report(
            f"{PAPER_OUT}/figures/{{ablation}}.png",
            caption="../report/ablation_table.rst",
            category="Figures",
        ),
        rewards=report(
            f"{PAPER_OUT}/figures/{{ablation}}_rewards.png",
            caption="../report/reward_curves.rst",
            category="Figures",
        ),
    log:
        f"{LOGS}/ablation_table/{{ablation}}.log",
    conda:
        "../envs/sva.yaml"
    params:
        key=key("ablation_table"),
    script:
        "../scripts/ablation_table.py"


# A comparison table the main run's methods read (Table 2 at paper scale, where SVAL is
# a Table 3 method): the same job, at the top of the results folder (sva/pipeline/layout.py).
use rule ablation_table as main_ablation_table with:
    output:
        table=report(
            f"{OUT}/{{ablation,{MAIN_TABLE_RE}}}.csv",
            caption="../report/ablation_table.rst",
            category="Tables",
        ),
        figure=report(
            f"{OUT}/figures/{{ablation}}.png",
            caption="../report/ablation_table.rst",
            category="Figures",
        ),
        rewards=report(
            f"{OUT}/figures/{{ablation}}_rewards.png",
            caption="../report/reward_curves.rst",
            category="Figures",
        ),
