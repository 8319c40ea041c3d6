# MLflow: the database and experiments are created once, in Snakemake's own process,
# before any job starts, on every invocation (whatever state an earlier run left).
# A tracking failure is one warning line: it never stops the pipeline (sva/pipeline/tracking.py).


onstart:
    from sva.pipeline import tracking

    tracking.init_tracking(CFG.tracking.experiment_prefix)
