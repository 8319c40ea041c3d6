from sva import atomic, tracking
from sva.config import validate_config
from sva.logs import log_to_file

with log_to_file(snakemake.log[0]):
    cfg = validate_config(snakemake.config, "config")
    ids = tracking.init_tracking(cfg.tracking.experiment_prefix)
    atomic.write_json(snakemake.output[0], {"tracking_uri": tracking.tracking_uri(), "experiments": ids})
