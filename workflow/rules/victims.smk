rule train_victim:
    input:
        index="data/snippets/{dataset}/index.csv",
        frames="data/snippets/{dataset}/frames.npy",
        tracking="results/tracking/experiments.json",
    output:
        ckpt="results/victims/{dataset}/{model}.pt",
        metrics="results/victims/{dataset}/{model}.json",
    log:
        "logs/train_victim/{dataset}/{model}.log",
    conda:
        "../envs/sva.yaml"
    params:
        snippets_dir=subpath(input.index, parent=True),
    script:
        "../scripts/train_victim.py"


rule table1:
    input:
        metrics=expand(
            "results/victims/{dataset}/{model}.json", dataset=DATASETS, model=MODELS
        ),
        tracking="results/tracking/experiments.json",
    output:
        "results/table1.csv",
    log:
        "logs/table1.log",
    conda:
        "../envs/sva.yaml"
    script:
        "../scripts/table1.py"
