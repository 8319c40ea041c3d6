rule attack_shard:
    input:
        attack_set="results/attack_sets/{dataset}.csv",
        index="data/snippets/{dataset}/index.csv",
        frames="data/snippets/{dataset}/frames.npy",
        features="data/features/{dataset}/features.npy",
        ckpt="results/victims/{dataset}/{victim}.pt",
        depends_on=dependency_shards,
    output:
        f"{OUT}/attacks/{{mode}}/{{dataset}}/{{victim}}/{{method}}/shard{{shard}}.json",
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
    script:
        "../scripts/attack_shard.py"


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
            f"{OUT}/{{ablation}}.csv",
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
    log:
        f"{LOGS}/ablation_table/{{ablation}}.log",
    conda:
        "../envs/sva.yaml"
    params:
        key=key("ablation_table"),
    script:
        "../scripts/ablation_table.py"
