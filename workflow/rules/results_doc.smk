rule results_doc:
    input:
        tables=["results/table1.csv"]
        + expand("results/{table}.csv", table=result_tables()),
        template=os.path.join(workflow.basedir, "docs/results.template.md"),
    output:
        "docs/results.md",
    log:
        "logs/results_doc.log",
    conda:
        "../envs/sva.yaml"
    params:
        key=key("results_doc"),
    script:
        "../scripts/results_doc.py"


rule reproduction:
    input:
        tables=["results/table1.csv"]
        + expand("results/{table}.csv", table=result_tables())
        + paper_tables(),
    output:
        report(
            f"results/{layout.PAPER}/reproduction.md",
            caption="../report/reproduction.rst",
            category="Reports",
        ),
    log:
        "logs/reproduction.log",
    conda:
        "../envs/sva.yaml"
    params:
        key=key("reproduction"),
    script:
        "../scripts/reproduction.py"
