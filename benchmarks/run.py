"""Transfer benchmark (issue 3): stella-oci vs oras-py vs skopeo vs raw streamed requests.

Run on demand, never in CI::

    .venv/bin/python benchmarks/run.py            # full: 1 GiB blob, 2,000 x 32 KiB, 3 runs
    .venv/bin/python benchmarks/run.py --quick    # smoke: 32 MiB, 200 x 32 KiB, 1 run (< 1 min)
    .venv/bin/python benchmarks/run.py --issue15 [--quick]   # issue 15's suite: benchmarks/issue15.py

Every tool runs as its own child process against the same local distribution registry
(``/usr/bin/docker-registry``); wall time is measured around the child, peak RSS comes from
the kernel (``wait4`` rusage ``ru_maxrss``) for that child alone. Each repetition gets fresh
random data, fresh repositories and a freshly started registry with empty storage, so no tool
(skopeo remembers blob locations) profits from an earlier run. Results: the median of the
runs, written as JSON and as a markdown table (``benchmarks/results/latest.{json,md}``).

``python benchmarks/run.py _worker TOOL ...`` is the child entry point for oras-py and the raw
``requests`` baseline (internal).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

MIB = 1024 * 1024
GIB = 1024 * MIB
PY = sys.executable
TIME_BIN = "/usr/bin/time"
STELLA = str(Path(sys.executable).with_name("stella-oci"))
TOOLS = ("stella-oci", "oras-py", "oras-py-chunked", "skopeo", "raw-requests", "raw-requests+sha256")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(EMPTY_JSON).hexdigest()


# --------------------------------------------------------------------------- child processes


@dataclass
class Measure:
    wall: float
    rss: int  # bytes
    code: int
    err: str


def run_measured(argv: Sequence[str], *, cwd: Path | None = None, log: Path) -> Measure:
    """Run ``argv`` as a child; wall time around it, peak RSS of that child alone.

    The child is started by GNU ``/usr/bin/time`` (a 2 MB process): ``ru_maxrss`` of a child
    forked straight from this Python process would start at this process's own RSS, because
    the kernel carries the pre-exec high-water mark of the forked copy across ``exec``.
    """
    rss_file = log.with_suffix(".rss")
    with open(log, "w") as out:
        start = time.perf_counter()
        code = subprocess.call(
            [TIME_BIN, "-q", "-f", "%M", "-o", str(rss_file), *argv],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        wall = time.perf_counter() - start
    try:
        rss = int(rss_file.read_text().split()[-1]) * 1024
    except (OSError, ValueError, IndexError):
        rss = 0
    return Measure(wall, rss, code, log.read_text(errors="replace")[-3000:])


# --------------------------------------------------------------------------- data


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            n = min(left, 8 * MIB)
            fh.write(os.urandom(n))
            left -= n


def make_random_bundle(root: Path, files: dict[str, int], export_id: str) -> Path:
    """Fresh random files and a valid export.json (tests/support/bundles.py's document)."""
    from tests.support.bundles import file_entry, make_bundle, read_export_json, write_export_json

    make_bundle(root, {}, export_id=export_id)
    for rel, size in files.items():
        write_random(root / rel, size)
    doc = read_export_json(root)
    doc["contents"] = [file_entry(root, rel) for rel in sorted(files)]
    write_export_json(root, doc)
    return root


def payload_files(bundle: Path) -> list[str]:
    doc = json.loads((bundle / "export.json").read_text())
    return [c["path"] for c in doc["contents"]]


# --------------------------------------------------------------------------- workers (children)


class _HashingReader:
    """A file object for requests' ``data=`` that hashes what is read (the +sha256 baseline)."""

    def __init__(self, fh: Any, digest: str) -> None:
        self.fh = fh
        self.digest = digest
        self.h = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.fh.read(n)
        self.h.update(data)
        if not data and "sha256:" + self.h.hexdigest() != self.digest:
            raise SystemExit(f"digest mismatch while sending {self.digest}")
        return data


def _raw_push(host: str, repo: str, tag: str, bundle: Path, files: list[str], verify: bool) -> None:
    import requests

    doc = json.loads((bundle / "export.json").read_text())
    digests = {c["path"]: (c["digest"], c["bytes"]) for c in doc["contents"]}
    s = requests.Session()
    base = f"http://{host}/v2/{repo}"
    layers = []

    def put_blob(digest: str, size: int, body: Any) -> None:
        r = s.post(f"{base}/blobs/uploads/", headers={"Content-Length": "0"})
        r.raise_for_status()
        loc = requests.compat.urljoin(base + "/", r.headers["Location"])
        sep = "&" if "?" in loc else "?"
        r = s.put(
            f"{loc}{sep}digest={digest}",
            data=body,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        r.raise_for_status()

    for rel in files:
        digest, size = digests[rel]
        if s.head(f"{base}/blobs/{digest}").status_code != 200:
            with open(bundle / rel, "rb") as fh:
                put_blob(digest, size, _HashingReader(fh, digest) if verify else fh)
        layers.append(
            {
                "mediaType": "application/octet-stream",
                "digest": digest,
                "size": size,
                "annotations": {"org.opencontainers.image.title": rel},
            }
        )
    if s.head(f"{base}/blobs/{EMPTY_DIGEST}").status_code != 200:
        put_blob(EMPTY_DIGEST, len(EMPTY_JSON), EMPTY_JSON)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
        "layers": layers,
    }
    r = s.put(
        f"{base}/manifests/{tag}",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    r.raise_for_status()


def _raw_push_threads(host: str, repo: str, tag: str, bundle: Path, files: list[str], threads: int) -> None:
    """The registry's floor from Python: ``threads`` workers, POST + PUT per blob, nothing else.

    No existence probe (the repository is new), no hashing (digests come from export.json), one
    ``requests.Session`` per thread (a session is not thread-safe), then the config and the
    manifest. What is left is the registry's own cost per upload and Python's HTTP cost.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    doc = json.loads((bundle / "export.json").read_text())
    digests = {c["path"]: (c["digest"], c["bytes"]) for c in doc["contents"]}
    base = f"http://{host}/v2/{repo}"
    local = threading.local()

    def session() -> requests.Session:
        s: requests.Session | None = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
        return s

    def put_blob(digest: str, size: int, body: Any) -> None:
        s = session()
        r = s.post(f"{base}/blobs/uploads/", headers={"Content-Length": "0"})
        r.raise_for_status()
        loc = requests.compat.urljoin(base + "/", r.headers["Location"])
        sep = "&" if "?" in loc else "?"
        r = s.put(
            f"{loc}{sep}digest={digest}",
            data=body,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        r.raise_for_status()

    def upload(rel: str) -> None:
        digest, size = digests[rel]
        with open(bundle / rel, "rb") as fh:
            put_blob(digest, size, fh)

    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(upload, files):
            pass
    put_blob(EMPTY_DIGEST, len(EMPTY_JSON), EMPTY_JSON)
    layers = [
        {
            "mediaType": "application/octet-stream",
            "digest": digests[rel][0],
            "size": digests[rel][1],
            "annotations": {"org.opencontainers.image.title": rel},
        }
        for rel in files
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
        "layers": layers,
    }
    r = session().put(
        f"{base}/manifests/{tag}", data=json.dumps(manifest).encode(), headers={"Content-Type": OCI_MANIFEST}
    )
    r.raise_for_status()


def _raw_pull(host: str, repo: str, tag: str, out: Path, verify: bool) -> None:
    import requests

    s = requests.Session()
    base = f"http://{host}/v2/{repo}"
    r = s.get(f"{base}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    r.raise_for_status()
    for layer in r.json()["layers"]:
        dest = out / layer["annotations"]["org.opencontainers.image.title"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        with s.get(f"{base}/blobs/{layer['digest']}", stream=True) as resp:
            resp.raise_for_status()
            h = hashlib.sha256()
            with open(dest, "wb") as fh:
                for chunk in resp.iter_content(chunk_size=MIB):
                    if verify:
                        h.update(chunk)
                    fh.write(chunk)
            if verify and "sha256:" + h.hexdigest() != layer["digest"]:
                raise SystemExit(f"{dest}: digest mismatch")


def worker(argv: list[str]) -> int:
    tool, op, host, repo, tag, path = argv[:6]
    target = f"{host}/{repo}:{tag}"
    if tool.startswith("oras"):
        import oras.provider

        reg = oras.provider.Registry(insecure=True)
        if op == "push":
            bundle = Path(path)
            files = payload_files(bundle)
            os.chdir(bundle)
            reg.push(target, files=files, do_chunked=tool.endswith("chunked"), quiet=True)
        else:
            out = Path(path)
            out.mkdir(parents=True, exist_ok=True)
            reg.pull(target, outdir=str(out))
        return 0
    if tool == "raw-requests-8t":
        bundle = Path(path)
        _raw_push_threads(host, repo, tag, bundle, payload_files(bundle), 8)
        return 0
    if tool.startswith("raw-requests"):
        verify = tool.endswith("+sha256")
        if op == "push":
            bundle = Path(path)
            _raw_push(host, repo, tag, bundle, payload_files(bundle), verify)
        else:
            _raw_pull(host, repo, tag, Path(path), verify)
        return 0
    raise SystemExit(f"unknown worker tool {tool}")


# --------------------------------------------------------------------------- one tool, one operation


def tool_argv(
    tool: str, op: str, host: str, repo: str, tag: str, path: Path, layout: Path | None
) -> list[str]:
    ref = f"{host}/{repo}:{tag}"
    if tool == "stella-oci":
        if op == "push":
            return [STELLA, "push", str(path), ref, "-q"]
        return [
            STELLA,
            "pull",
            ref,
            "-o",
            str(path),
            "-q",
            "--ledger",
            str(path.parent / f"{path.name}.ledger"),
        ]
    if tool == "skopeo":
        if op == "push":
            assert layout is not None
            return [
                "skopeo", "copy", "--quiet", "--insecure-policy", "--dest-tls-verify=false",
                f"oci:{layout}:bench", f"docker://{ref}",
            ]  # fmt: skip
        return [
            "skopeo", "copy", "--quiet", "--insecure-policy", "--src-tls-verify=false",
            f"docker://{ref}", f"oci:{path}:bench",
        ]  # fmt: skip
    return [PY, str(Path(__file__).resolve()), "_worker", tool, op, host, repo, tag, str(path)]


@dataclass
class Result:
    case: str
    op: str
    tool: str
    payload_bytes: int
    walls: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        wall = statistics.median(self.walls) if self.walls else None
        return {
            "case": self.case,
            "op": self.op,
            "tool": self.tool,
            "payload_bytes": self.payload_bytes,
            "runs": len(self.walls),
            "wall_s": [round(w, 3) for w in self.walls],
            "median_wall_s": round(wall, 3) if wall is not None else None,
            "median_throughput_MBps": round(self.payload_bytes / wall / 1e6, 1) if wall else None,
            "median_peak_rss_MB": round(statistics.median(self.rss) / 1e6, 1) if self.rss else None,
            "failures": self.failures,
        }


# --------------------------------------------------------------------------- the benchmark


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.workdir)
        self.results: dict[tuple[str, str, str], Result] = {}
        self.tools = [t for t in TOOLS if t in args.tools]
        self.registry: Any = None

    def result(self, case: str, op: str, tool: str, payload: int) -> Result:
        key = (case, op, tool)
        if key not in self.results:
            self.results[key] = Result(case, op, tool, payload)
        return self.results[key]

    def start_registry(self, rep: int) -> None:
        from tests.support.registry import start_registry

        if self.registry is not None:
            self.registry.stop()
            shutil.rmtree(self.registry.root.parent, ignore_errors=True)
        self.registry = start_registry(self.work / f"registry-{rep}")

    def measure(
        self, case: str, op: str, tool: str, payload: int, argv: list[str], cwd: Path | None = None
    ) -> None:
        m = run_measured(argv, cwd=cwd, log=self.work / "child.log")
        res = self.result(case, op, tool, payload)
        if m.code != 0:
            res.failures.append(f"exit {m.code}: {m.err.strip()[-400:]}")
            print(f"  {case:6} {op:7} {tool:16} FAILED exit {m.code}: {m.err.strip()[-300:]}", flush=True)
            return
        res.walls.append(m.wall)
        res.rss.append(m.rss)
        print(
            f"  {case:6} {op:7} {tool:16} {m.wall:8.2f} s {payload / m.wall / 1e6:9.1f} MB/s "
            f"{m.rss / 1e6:7.1f} MB RSS",
            flush=True,
        )

    def case(self, rep: int, case: str, files: dict[str, int], repush: bool) -> None:
        host = self.registry.host
        data = self.work / f"data-{rep}-{case}"
        bundle = make_random_bundle(data / "bundle", files, export_id=f"bench-{case}-{rep:02d}")
        payload = sum(files.values())
        layout = data / "layout"
        ref_repo = f"bench/{case}-r{rep}-src"
        # The OCI layout skopeo pushes from, and the artifact every tool pulls (not timed).
        for argv in (
            [STELLA, "push", str(bundle), f"oci:{layout}:bench", "-q"],
            [STELLA, "push", str(bundle), f"{host}/{ref_repo}:bench", "-q"],
        ):
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        for tool in self.tools:
            repo = f"bench/{case}-r{rep}-{tool.replace('+', '-')}"
            argv = tool_argv(tool, "push", host, repo, "bench", bundle, layout)
            self.measure(case, "push", tool, payload, argv)
            if repush:
                self.measure(case, "repush", tool, payload, argv)
        for tool in self.tools:
            out = data / f"pulled-{tool}"
            argv = tool_argv(tool, "pull", host, ref_repo, "bench", out, None)
            self.measure(case, "pull", tool, payload, argv)
            shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)

    def run(self) -> None:
        a = self.args
        n_files = a.files
        for rep in range(a.runs):
            print(f"run {rep + 1}/{a.runs}", flush=True)
            self.start_registry(rep)
            if "big" in a.cases:
                self.case(rep, "big", {"db/blob.bin": a.big_mib * MIB}, repush=False)
            if "many" in a.cases:
                files = {f"files/f{i:05d}.bin": a.file_kib * 1024 for i in range(n_files)}
                self.case(rep, "many", files, repush=True)
        if self.registry is not None:
            self.registry.stop()
            shutil.rmtree(self.registry.root.parent, ignore_errors=True)


# --------------------------------------------------------------------------- latency (netem)


def netem_available() -> tuple[bool, str]:
    """Can this machine add latency with tc netem inside a network namespace?"""
    if not shutil.which("tc") or not shutil.which("ip"):
        return False, "tc/ip (iproute2) not installed"
    ns = f"stella-bench-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    if made.returncode != 0:
        return False, f"ip netns add failed: {made.stderr.strip()}"
    try:
        q = subprocess.run(
            ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "10ms"],
            capture_output=True,
            text=True,
        )
        if q.returncode != 0:
            return False, (
                f"tc qdisc add ... netem: {q.stderr.strip()} (the kernel {platform.release()} has no "
                "sch_netem and no loadable modules)"
            )
        return True, "ok"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# --------------------------------------------------------------------------- output


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for name, argv in {
        "skopeo": ["skopeo", "--version"],
        "registry": ["/usr/bin/docker-registry", "--version"],
    }.items():
        try:
            versions[name] = subprocess.run(argv, capture_output=True, text=True).stdout.strip()
        except OSError:
            versions[name] = "missing"
    try:
        from importlib.metadata import version

        versions["oras-py"] = version("oras")
        versions["requests"] = version("requests")
        versions["stella-oci"] = version("stella-oci")
    except Exception:  # informational only
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
    }


def check_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    med = {(r["case"], r["op"], r["tool"]): r["median_wall_s"] for r in rows}

    def ratio(a: tuple[str, str, str], b: tuple[str, str, str]) -> float | None:
        x, y = med.get(a), med.get(b)
        return round(x / y, 2) if x and y else None

    out = []
    for op in ("push", "pull"):
        r = ratio(("big", op, "stella-oci"), ("big", op, "raw-requests"))
        out.append(
            {"target": f"big {op} <= 1.15x raw streamed wall", "value": r, "met": r is not None and r <= 1.15}
        )
    r = ratio(("many", "push", "oras-py"), ("many", "push", "stella-oci"))
    out.append({"target": "many push >= 3x faster than oras-py", "value": r, "met": r is not None and r >= 3})
    r = ratio(("many", "push", "skopeo"), ("many", "push", "stella-oci"))
    out.append(
        {
            "target": "many push not slower than skopeo (skopeo/stella >= 1)",
            "value": r,
            "met": r is not None and r >= 1,
        }
    )
    for op in ("push", "pull"):  # not targets: how far from a client that also hashes
        r = ratio(("big", op, "stella-oci"), ("big", op, "raw-requests+sha256"))
        out.append({"target": f"(info) big {op} vs raw streamed + sha256", "value": r, "met": None})
    w = med.get(("many", "repush", "stella-oci"))
    out.append({"target": "many re-push < 2 s", "value": w, "met": w is not None and w < 2})
    return out


def markdown(doc: dict[str, Any]) -> str:
    cfg = doc["config"]
    lines = [
        f"Benchmark ({'quick' if cfg['quick'] else 'full'}): median of {cfg['runs']} run(s); "
        f"big = one {cfg['big_mib']} MiB blob, many = {cfg['files']} files x {cfg['file_kib']} KiB. "
        f"Registry storage on {cfg['storage']}. Machine: {doc['machine']['cpu']}, "
        f"{doc['machine']['cores']} cores, {doc['machine']['memory']}.",
        "",
        "| case | op | tool | wall (s) | MB/s | peak RSS (MB) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in doc["results"]:
        wall = "failed" if r["median_wall_s"] is None else f"{r['median_wall_s']:.2f}"
        tput = "" if r["median_throughput_MBps"] is None else f"{r['median_throughput_MBps']:.0f}"
        if r["op"] == "repush":
            tput = "-"
        rss = "" if r["median_peak_rss_MB"] is None else f"{r['median_peak_rss_MB']:.0f}"
        lines.append(f"| {r['case']} | {r['op']} | {r['tool']} | {wall} | {tput} | {rss} |")
    lines += ["", "| target | value | met |", "|---|---:|:---:|"]
    for t in doc["targets"]:
        met = "-" if t["met"] is None else ("yes" if t["met"] else "no")
        lines.append(f"| {t['target']} | {t['value']} | {met} |")
    lat = doc["latency"]
    lines += ["", f"20 ms RTT (netem): {'run' if lat['available'] else 'skipped: ' + lat['reason']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_worker":
        return worker(argv[1:])
    if "--issue15" in argv:  # the one-run suite of issue 15 (benchmarks/issue15.py)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import issue15

        return issue15.main([a for a in argv if a != "--issue15"])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small smoke version (< 1 min)")
    p.add_argument("--runs", type=int, help="repetitions (default 3, quick 1)")
    p.add_argument("--big-mib", type=int, help="size of the big blob in MiB (default 1024, quick 32)")
    p.add_argument("--files", type=int, help="number of small files (default 2000, quick 200)")
    p.add_argument("--file-kib", type=int, default=32, help="size of each small file (default 32)")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma list of {', '.join(TOOLS)}")
    p.add_argument("--cases", default="big,many", help="comma list of big, many")
    p.add_argument(
        "--workdir", help="scratch directory (default: /dev/shm/stella-oci-bench, else a temp dir)"
    )
    p.add_argument(
        "--out",
        default=str(REPO_ROOT / "benchmarks/results"),
        help="where latest.json/.md (quick: quick.json/.md) go",
    )
    args = p.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.big_mib = args.big_mib or (32 if args.quick else 1024)
    args.files = args.files or (200 if args.quick else 2000)
    args.tools = args.tools.split(",")
    args.cases = args.cases.split(",")
    if not args.workdir:
        shm = Path("/dev/shm")
        need = 8 * args.big_mib * MIB
        ok = shm.is_dir() and shutil.disk_usage(shm).free > need
        args.workdir = str(shm / "stella-oci-bench") if ok else str(Path("/tmp") / "stella-oci-bench")
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    storage = "tmpfs (/dev/shm)" if str(work).startswith("/dev/shm") else f"disk ({work})"
    print(f"workdir {work} ({storage})", flush=True)
    lat_ok, lat_reason = netem_available()
    bench = Bench(args)
    started = time.time()
    try:
        bench.run()
    finally:
        if bench.registry is not None:
            bench.registry.stop()
    rows = [r.to_json() for r in bench.results.values()]
    order = {
        ("big", "push"): 0,
        ("big", "pull"): 1,
        ("many", "push"): 2,
        ("many", "repush"): 3,
        ("many", "pull"): 4,
    }
    rows.sort(key=lambda r: (order.get((r["case"], r["op"]), 9), TOOLS.index(r["tool"])))
    doc = {
        "config": {
            "quick": args.quick,
            "runs": args.runs,
            "big_mib": args.big_mib,
            "files": args.files,
            "file_kib": args.file_kib,
            "tools": bench.tools,
            "storage": storage,
            "measured": "wall time of the tool's process (start-up included); peak RSS from wait4 ru_maxrss",
        },
        "machine": machine(),
        "latency": {"available": lat_ok, "reason": lat_reason, "note": "20 ms RTT runs need sch_netem"},
        "results": rows,
        "targets": check_targets(rows),
        "elapsed_s": round(time.time() - started, 1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "quick" if args.quick else "latest"
    (out / f"{stem}.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    (out / f"{stem}.md").write_text(markdown(doc))
    print(markdown(doc))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
