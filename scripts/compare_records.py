"""Compare the per-video attack records of two runs of the pipeline, field by field.

    .venv/bin/python scripts/compare_records.py OLD_RESULTS_DIR NEW_RESULTS_DIR

Matches records by (mode, dataset, victim, method, video) in any layout under
``<dir>/attacks/`` (``…/videos/<video>.json`` or the older ``…/shard<k>/videos/…``) and
compares what an attack decides: success (float and uint8), Q and Q per phase, Q of the
returned episode, MAP, S, L∞, the selected frames, and every episode's and epoch's log
(masks, queries, MAP, rewards, the agent's update statistics). Prints one line per difference and
a summary; exits 1 when any record differs or is missing on one side.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FIELDS = ("success", "success_uint8", "queries", "queries_by_phase", "queries_best_episode", "map", "sparsity",
          "linf", "selected_frames", "pred_float", "pred_uint8", "episodes", "epochs", "reward_trace")


def load(results: Path) -> dict[tuple, dict]:
    out = {}
    for path in sorted(Path(results, "attacks").rglob("videos/*.json")):
        r = json.loads(path.read_text())
        out[(r["mode"], r["dataset"], r["victim"], r["method"], str(r["video_id"]))] = r
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    old, new = (load(Path(a)) for a in argv)
    problems = 0
    for key in sorted(set(old) | set(new)):
        if key not in old or key not in new:
            print(f"{'/'.join(key)}: only in {'new' if key in new else 'old'}")
            problems += 1
            continue
        for field in FIELDS:
            a, b = old[key].get(field), new[key].get(field)
            if a != b:
                print(f"{'/'.join(key)}: {field}: {a!r} -> {b!r}")
                problems += 1
    print(f"{len(set(old) & set(new))} records in both runs, {problems} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
