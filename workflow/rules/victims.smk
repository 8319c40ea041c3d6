rule train_victim:
    input:
        index="data/snippets/{dataset}/index.csv",
        frames="data/snippets/{dataset}/frames.npy",
    output:
        ckpt="results/victims/{dataset}/{model}.pt",
        metrics="results/victims/{dataset}/{model}.json",
    log:
        "logs/train_victim/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/train_victim/{dataset}/{model}.tsv"
    conda:
        "../envs/sva.yaml"
    params:
        key=key("train_victim"),
        snippets_dir=subpath(input.index, parent=True),
    script:
        "../scripts/train_victim.py"


rule table1:
    input:
        metrics=expand(
            "results/victims/{dataset}/{model}.json", dataset=DATASETS, model=MODELS
        ),
    output:
        table=report(
            "results/table1.csv",
            caption="../report/table1.rst",
            category="Tables",
        ),
        metrics="results/metrics/table1.json",
    log:
        "logs/table1.log",
    conda:
        "../envs/sva.yaml"
    params:
        key=key("table1"),
    script:
        "../scripts/table1.py"
