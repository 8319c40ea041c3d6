rule attack_shard:
    input:
        attack_set="results/attack_sets/{dataset}.csv",
        index="data/snippets/{dataset}/index.csv",
        frames="data/snippets/{dataset}/frames.npy",
        features="data/features/{dataset}/features.npy",
        ckpt="results/victims/{dataset}/{victim}.pt",
        tracking="results/tracking/experiments.json",
    output:
        "results/attacks/{mode}/{dataset}/{victim}/{method}/shard{shard}.json",
    log:
        "logs/attack/{mode}/{dataset}/{victim}/{method}/shard{shard}.log",
    conda:
        "../envs/sva.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        snippets_dir=subpath(input.index, parent=True),
    script:
        "../scripts/attack_shard.py"


rule attack_table:
    input:
        shards=lambda wc: attack_shards(TABLE_MODES[wc.table]),
        tracking="results/tracking/experiments.json",
    output:
        table="results/{table}.csv",
        figure="results/figures/{table}.png",
    log:
        "logs/attack_table/{table}.log",
    conda:
        "../envs/sva.yaml"
    params:
        mode=lambda wc: TABLE_MODES[wc.table],
    script:
        "../scripts/attack_table.py"
