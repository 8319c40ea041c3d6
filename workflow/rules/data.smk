rule download:
    output:
        "data/raw/{dataset}/manifest.json",
    log:
        "logs/download/{dataset}.log",
    benchmark:
        "results/benchmarks/download/{dataset}.tsv"
    conda:
        "../envs/sva.yaml"
    params:
        key=key("download"),
        raw_dir=subpath(output[0], parent=True),
        cache_dir="data/downloads/{dataset}",
    script:
        "../scripts/download.py"


rule snippets:
    input:
        "data/raw/{dataset}/manifest.json",
    output:
        frames="data/snippets/{dataset}/frames.npy",
        index="data/snippets/{dataset}/index.csv",
        bad="data/snippets/{dataset}/bad_videos.csv",
        meta="data/snippets/{dataset}/meta.json",
    log:
        "logs/snippets/{dataset}.log",
    benchmark:
        "results/benchmarks/snippets/{dataset}.tsv"
    conda:
        "../envs/sva.yaml"
    params:
        key=key("snippets"),
        raw_dir=subpath(input[0], parent=True),
        out_dir=subpath(output.frames, parent=True),
    script:
        "../scripts/snippets.py"


rule features:
    input:
        "data/snippets/{dataset}/index.csv",
        "data/snippets/{dataset}/frames.npy",
    output:
        features="data/features/{dataset}/features.npy",
        meta="data/features/{dataset}/meta.json",
    log:
        "logs/features/{dataset}.log",
    benchmark:
        "results/benchmarks/features/{dataset}.tsv"
    conda:
        "../envs/sva.yaml"
    params:
        key=key("features"),
        snippets_dir=subpath(input[0], parent=True),
        out_dir=subpath(output.features, parent=True),
    script:
        "../scripts/features.py"
