"""Start-up benchmark (issue 12): ``stella-oci --version`` against ``python -c "import click"``.

Both run as child processes of the same interpreter (this venv), 10 times each, interleaved;
the median wall time of each is printed with the ratio. The goal: ``--version`` (and
``--help``) within 2x of importing click alone, i.e. nothing heavy (pydantic, jsonschema,
requests, rich) imported to print a version or a help text::

    .venv/bin/python benchmarks/startup.py            # median of 10
    .venv/bin/python benchmarks/startup.py --runs 20 --json

Exit status 1 when the ratio is above ``--max-ratio`` (default 2.0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

CASES: dict[str, list[str]] = {
    "stella-oci --version": [sys.executable, "-m", "stella_oci", "--version"],
    "stella-oci --help": [sys.executable, "-m", "stella_oci", "--help"],
    'python -c "import click"': [sys.executable, "-c", "import click"],
}
BASELINE = 'python -c "import click"'


def wall(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def measure(runs: int) -> dict[str, list[float]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for cmd in CASES.values():  # warm the page cache and the bytecode caches once
        wall(cmd, env)
    for _ in range(runs):
        for name, cmd in CASES.items():
            times[name].append(wall(cmd, env))
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--max-ratio", type=float, default=2.0)
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()
    times = measure(args.runs)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    base = medians[BASELINE]
    ratios = {name: medians[name] / base for name in CASES}
    worst = max(ratios["stella-oci --version"], ratios["stella-oci --help"])
    if args.json:
        doc = {
            "runs": args.runs,
            "python": sys.executable,
            "medianSeconds": medians,
            "ratioToImportClick": ratios,
            "maxRatio": args.max_ratio,
            "passed": worst <= args.max_ratio,
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        print(f"start-up, median of {args.runs} runs ({sys.executable})")
        for name in CASES:
            print(f"  {name:<28} {medians[name] * 1000:7.1f} ms   {ratios[name]:.2f}x")
        verdict = "within" if worst <= args.max_ratio else "OVER"
        print(f"ratio stella-oci / import click: {worst:.2f} ({verdict} the {args.max_ratio:g}x goal)")
    return 0 if worst <= args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
