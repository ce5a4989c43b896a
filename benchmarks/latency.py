"""Latency benchmark (issue 15): many small files pushed to a far registry.

A local ``/usr/bin/docker-registry`` behind ``benchmarks/latency_proxy.py`` (every chunk waits
RTT/2 each way; this kernel has no netem). Each tool pushes a fresh bundle of N x S KiB random
files to its own repository through the proxy, side by side in the same minute, repeated
``--runs`` times (median). The proxy counts the HTTP requests of every push; they are printed
per new blob by kind (``HEAD blob``, ``POST upload``, ``PUT upload`` ...). Request counts are
exact whatever the machine's load; wall times are not, so the load average is printed too.

The ideal is ``round trips per blob x blobs / transfers in flight x RTT`` with 2 round trips
per new blob (POST + PUT, the least the distribution API allows) and ``--in-flight`` transfers
(default: stella-oci's push concurrency, 5).

Run::

    .venv/bin/python benchmarks/latency.py                   # 300 x 32 KiB, 40 ms RTT, 3 runs
    .venv/bin/python benchmarks/latency.py --files 50 --runs 1

Writes ``benchmarks/results/latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for p in (REPO_ROOT, REPO_ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from latency_proxy import LatencyProxy  # noqa: E402
from run import PY, STELLA, make_random_bundle  # noqa: E402

TOOLS = ("stella-oci", "oras-py")


def push_argv(tool: str, bundle: Path, ref: str, concurrency: int | None) -> list[str]:
    host, rest = ref.split("/", 1)
    repo, tag = rest.rsplit(":", 1)
    if tool == "stella-oci":
        extra = ["--concurrency", str(concurrency)] if concurrency else []
        return [STELLA, "push", str(bundle), ref, "-q", *extra]
    return [PY, str(REPO_ROOT / "benchmarks/run.py"), "_worker", tool, "push", host, repo, tag, str(bundle)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--file-kib", type=int, default=32)
    ap.add_argument("--rtt-ms", type=float, default=40.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--concurrency", type=int, help="stella-oci --concurrency (default: its own)")
    ap.add_argument("--in-flight", type=int, default=5, help="transfers in flight for the ideal")
    ap.add_argument("--out", default=str(REPO_ROOT / "benchmarks/results/latency.json"))
    args = ap.parse_args(argv)
    tools = args.tools.split(",")
    from tests.support.registry import start_registry

    work = Path(
        tempfile.mkdtemp(prefix="stella-latency-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    walls: dict[str, list[float]] = {t: [] for t in tools}
    counts: dict[str, list[dict[str, float]]] = {t: [] for t in tools}
    loads: list[tuple[float, float, float]] = []
    reg = start_registry(work / "registry")
    try:
        up_host, up_port = reg.host.rsplit(":", 1)
        with LatencyProxy(up_host, int(up_port), rtt=args.rtt_ms / 1000) as proxy:
            host = f"127.0.0.1:{proxy.port}"
            for rep in range(args.runs):
                loads.append(os.getloadavg())
                for tool in tools:
                    files = {f"files/f{i:05d}.bin": args.file_kib * 1024 for i in range(args.files)}
                    bundle = make_random_bundle(
                        work / f"b-{rep}-{tool}", files, export_id=f"lat-{rep}-{tool}"
                    )
                    ref = f"{host}/lat/r{rep}-{tool}:bench"
                    proxy.reset_counts()
                    t0 = time.perf_counter()
                    res = subprocess.run(
                        push_argv(tool, bundle, ref, args.concurrency),
                        env=env,
                        capture_output=True,
                        text=True,
                    )
                    wall = time.perf_counter() - t0
                    if res.returncode != 0:
                        print(
                            f"{tool}: exit {res.returncode}: {(res.stdout + res.stderr)[-800:]}", flush=True
                        )
                        return 1
                    kinds = proxy.counts()
                    per_blob = {k: round(v / args.files, 2) for k, v in sorted(kinds.items())}
                    per_blob["connections"] = proxy.connections
                    walls[tool].append(wall)
                    counts[tool].append(per_blob)
                    print(f"run {rep + 1} {tool:11} {wall:7.2f} s  requests per blob: {per_blob}", flush=True)
                    shutil.rmtree(bundle, ignore_errors=True)
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)
    rtt = args.rtt_ms / 1000
    ideal = 2 * args.files / args.in_flight * rtt
    med = {t: statistics.median(w) for t, w in walls.items()}
    doc: dict[str, Any] = {
        "config": vars(args),
        "loadavg": loads,
        "wall_s": walls,
        "median_wall_s": med,
        "requests_per_blob": counts,
        "ideal_s": round(ideal, 3),
        "ideal_formula": f"2 round trips x {args.files} blobs / {args.in_flight} in flight x {args.rtt_ms} ms",
    }
    print(f"load average at each run: {[tuple(round(x, 1) for x in la) for la in loads]}")
    print(f"ideal: {doc['ideal_formula']} = {ideal:.2f} s")
    for t in tools:
        print(f"{t:11} median {med[t]:.2f} s  ({med[t] / ideal:.2f}x ideal)")
    if "stella-oci" in med and "oras-py" in med:
        r = med["oras-py"] / med["stella-oci"]
        doc["oras_over_stella"] = round(r, 2)
        doc["stella_over_ideal"] = round(med["stella-oci"] / ideal, 2)
        print(
            f"oras-py / stella-oci = {r:.2f}x (goal >= 10x); stella-oci / ideal = {med['stella-oci'] / ideal:.2f}x (goal <= 1.5x)"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
