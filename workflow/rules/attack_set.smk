rule attack_set:
    input:
        index="data/snippets/{dataset}/index.csv",
        frames="data/snippets/{dataset}/frames.npy",
        ckpts=expand("results/victims/{{dataset}}/{model}.pt", model=MODELS),
    output:
        "results/attack_sets/{dataset}.csv",
    log:
        "logs/attack_set/{dataset}.log",
    conda:
        "../envs/sva.yaml"
    params:
        key=key("attack_set"),
        snippets_dir=subpath(input.index, parent=True),
    script:
        "../scripts/attack_set.py"
