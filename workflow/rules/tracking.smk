rule init_tracking:
    output:
        "results/tracking/experiments.json",
    log:
        "logs/init_tracking.log",
    conda:
        "../envs/sva.yaml"
    script:
        "../scripts/init_tracking.py"
