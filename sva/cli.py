"""Command line: ``sva check-config FILE [FILE ...]`` validates configuration files
(merged in order, like Snakemake's ``--configfile``) and prints the result as YAML;
``sva summary RECORD_OR_SHARD.json ...`` prints the table rows built from records;
``sva window-coverage --windows windows.csv RECORDS ...`` relates episode success to
the class window (synthetic data, :mod:`sva.analysis`)."""

from __future__ import annotations

import argparse
import sys

import yaml

from sva.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sva", description="SVA workbench utilities")
    sub = ap.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-config", help="validate params.yaml (+ overrides) and print the result")
    check.add_argument("files", nargs="+")
    summary = sub.add_parser("summary", help="FR / MAP / S / Q from attack records or shard files")
    summary.add_argument("files", nargs="+")
    cover = sub.add_parser("window-coverage",
                           help="episode success by how many frames of the class window the mask hit (synthetic)")
    cover.add_argument("--windows", required=True, help="data/raw/<dataset>/windows.csv")
    cover.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    if args.command == "check-config":
        try:
            cfg = load_config(*args.files)
        except ConfigError as err:
            print(err, file=sys.stderr)
            return 2
        print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), end="")
        return 0
    from sva.aggregate import load_records, summarize

    if args.command == "window-coverage":
        from sva.analysis import coverage_summary, episode_coverage, load_windows

        records = load_records(args.files).to_dict("records")
        print(coverage_summary(episode_coverage(records, load_windows(args.windows)))
              .to_string(index=False))
        return 0
    print(summarize(load_records(args.files)).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
