"""Latency benchmark (issue 15): many small files pushed to a far registry.

A local ``/usr/bin/docker-registry`` behind ``benchmarks/latency_proxy.py`` (every chunk waits
RTT/2 each way; this kernel has no netem). Each tool pushes a fresh bundle of N x S KiB random
files to its own repository through the proxy, side by side in the same minute, repeated
``--runs`` times (median). The proxy counts the HTTP requests of every push; they are printed
per new blob by kind (``HEAD blob``, ``POST upload``, ``PUT upload`` ...). Request counts are
exact whatever the machine's load; wall times are not, so the load average is printed too.

The ideal is ``round trips per blob x blobs / transfers in flight x RTT`` with 2 round trips
per new blob (POST + PUT, the least the distribution API allows for a blob of unknown presence
with a separate upload session) and ``--in-flight`` transfers (default: stella-oci's own
concurrency for small blobs, ``SMALL_BLOBS_CONCURRENCY``, 16). The proxy also reports the most
connections open at once (``peak_open_connections``), the transfers really in flight.

``measure_latency()`` is what ``benchmarks/issue15.py`` (the one-run suite) calls.

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


def small_blob_concurrency(default: int = 16) -> int:
    """stella-oci's transfers in flight for small blobs (its own constant, when it has one)."""
    try:
        from stella_oci.verbs import push as push_mod

        return int(getattr(push_mod, "SMALL_BLOBS_CONCURRENCY", default))
    except Exception:
        return default


def measure_latency(
    work: Path,
    *,
    files: int = 300,
    file_kib: int = 32,
    rtt_ms: float = 40.0,
    runs: dict[str, int] | None = None,
    concurrency: int | None = None,
    in_flight: int | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Push fresh bundles through a delaying proxy; walls, requests per blob, ideal and ratios.

    ``runs`` maps each tool to its repetitions (default: stella-oci 3, oras-py 3); the tools
    take turns, so each run of one is in the same minute as a run of the other.
    """
    from tests.support.registry import start_registry

    runs = runs if runs is not None else {t: 3 for t in TOOLS}
    tools = [t for t in TOOLS if runs.get(t)]
    in_flight = in_flight or concurrency or small_blob_concurrency()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    walls: dict[str, list[float]] = {t: [] for t in tools}
    counts: dict[str, list[dict[str, float]]] = {t: [] for t in tools}
    loads: list[tuple[float, float, float]] = []
    work.mkdir(parents=True, exist_ok=True)
    reg = start_registry(work / "registry")
    try:
        up_host, up_port = reg.host.rsplit(":", 1)
        with LatencyProxy(up_host, int(up_port), rtt=rtt_ms / 1000) as proxy:
            host = f"127.0.0.1:{proxy.port}"
            for rep in range(max(runs.values())):
                loads.append(os.getloadavg())
                for tool in tools:
                    if rep >= runs[tool]:
                        continue
                    blobs = {f"files/f{i:05d}.bin": file_kib * 1024 for i in range(files)}
                    bundle = make_random_bundle(
                        work / f"b-{rep}-{tool}", blobs, export_id=f"lat-{rep}-{tool}"
                    )
                    ref = f"{host}/lat/r{rep}-{tool}:bench"
                    proxy.reset_counts()
                    t0 = time.perf_counter()
                    res = subprocess.run(
                        push_argv(tool, bundle, ref, concurrency), env=env, capture_output=True, text=True
                    )
                    wall = time.perf_counter() - t0
                    if res.returncode != 0:
                        raise RuntimeError(
                            f"{tool}: exit {res.returncode}: {(res.stdout + res.stderr)[-800:]}"
                        )
                    kinds = proxy.counts()
                    new_blobs = kinds.get("PUT upload", 0) or files  # one closing PUT per new blob
                    per_blob: dict[str, float] = {
                        k: round(v / new_blobs, 2) for k, v in sorted(kinds.items())
                    }
                    per_blob["new_blobs"] = new_blobs
                    per_blob["blob_requests"] = round(
                        sum(v for k, v in kinds.items() if k.endswith((" blob", " upload"))) / new_blobs, 2
                    )
                    per_blob["upload_requests"] = round(
                        sum(v for k, v in kinds.items() if k.endswith(" upload")) / new_blobs, 2
                    )
                    per_blob["probes_total"] = kinds.get("HEAD blob", 0)
                    per_blob["connections"] = proxy.connections
                    per_blob["peak_open_connections"] = proxy.peak_connections
                    walls[tool].append(wall)
                    counts[tool].append(per_blob)
                    log(f"  latency run {rep + 1} {tool:11} {wall:7.2f} s  requests per new blob: {per_blob}")
                    shutil.rmtree(bundle, ignore_errors=True)
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)
    rtt = rtt_ms / 1000
    ideal = 2 * files / in_flight * rtt
    med = {t: statistics.median(w) for t, w in walls.items()}
    doc: dict[str, Any] = {
        "config": {
            "files": files,
            "file_kib": file_kib,
            "rtt_ms": rtt_ms,
            "runs": runs,
            "concurrency": concurrency,
            "in_flight": in_flight,
        },
        "loadavg": loads,
        "wall_s": {t: [round(w, 3) for w in ws] for t, ws in walls.items()},
        "median_wall_s": {t: round(m, 3) for t, m in med.items()},
        "requests_per_new_blob": counts,
        "ideal_s": round(ideal, 3),
        "ideal_formula": f"2 round trips (POST + PUT) x {files} blobs / {in_flight} in flight x {rtt_ms:g} ms",
    }
    if "stella-oci" in med:
        doc["stella_over_ideal"] = round(med["stella-oci"] / ideal, 2)
    if "stella-oci" in med and "oras-py" in med:
        doc["oras_over_stella"] = round(med["oras-py"] / med["stella-oci"], 2)
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--file-kib", type=int, default=32)
    ap.add_argument("--rtt-ms", type=float, default=40.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--concurrency", type=int, help="stella-oci --concurrency (default: its own)")
    ap.add_argument(
        "--in-flight",
        type=int,
        help="transfers in flight for the ideal (default: stella-oci's for small blobs)",
    )
    ap.add_argument("--out", default=str(REPO_ROOT / "benchmarks/results/latency.json"))
    args = ap.parse_args(argv)
    work = Path(
        tempfile.mkdtemp(prefix="stella-latency-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    )
    try:
        doc = measure_latency(
            work,
            files=args.files,
            file_kib=args.file_kib,
            rtt_ms=args.rtt_ms,
            runs={t: args.runs for t in args.tools.split(",")},
            concurrency=args.concurrency,
            in_flight=args.in_flight,
            log=lambda m: print(m, flush=True),
        )
    except RuntimeError as exc:
        print(exc, flush=True)
        return 1
    ideal = doc["ideal_s"]
    print(f"load average at each run: {[tuple(round(x, 1) for x in la) for la in doc['loadavg']]}")
    print(f"ideal: {doc['ideal_formula']} = {ideal:.2f} s")
    for t, m in doc["median_wall_s"].items():
        print(f"{t:11} median {m:.2f} s  ({m / ideal:.2f}x ideal)")
    if "oras_over_stella" in doc:
        print(
            f"oras-py / stella-oci = {doc['oras_over_stella']:.2f}x (goal >= 10x); "
            f"stella-oci / ideal = {doc['stella_over_ideal']:.2f}x (goal <= 1.5x)"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
