"""Issue 15 in one run: latency, big blobs, many files, start-up and scale, every ratio with its goal.

One command measures all of it on the same machine in the same quarter of an hour and prints a
table of ratios, each with the goal beside it and PASS or MISS::

    .venv/bin/python benchmarks/issue15.py            # full: <= 15 min on 2 vCPUs
    .venv/bin/python benchmarks/issue15.py --quick    # small sizes, ~2 min: develop with this
    .venv/bin/python benchmarks/run.py --issue15      # the same (run.py's entry point)
    .venv/bin/python benchmarks/readme_table.py       # README's table from results/issue15.json

Sections (``--sections`` picks some; goals of sections not run are left out):

latency   300 x 32 KiB through ``latency_proxy.py`` at 40 ms RTT: stella-oci (median of 3) and
          oras-py (1 run: it is latency-bound, 40 s, and quiet), requests per new blob counted
          by the proxy; the ideal is 2 round trips (POST + PUT) x blobs / transfers in flight.
big       512 MiB and 1 GiB: stella-oci push against the raw streamed ``requests`` PUT
          (HEAD + POST + PUT with the open file as body), median of 3, pulls for information.
many      2,000 x 32 KiB on loopback: stella-oci, an 8-thread raw client that hashes nothing
          (POST + PUT per blob: the registry's floor from Python) and oras-py; median of 3.
startup   ``--version``/``--help`` against ``python -c "import click"`` (median of 10); a push of
          a 3-file bundle against the same uploads by a ``requests`` script (median of 10);
          ``python -X importtime`` top entries now and at ``--importtime-before`` (a revision).
scale     2,500 / 5,000 / 10,000 x 32 KiB files and 1 / 2.5 / 5 GiB single files: push, pull,
          verify (one run each), peak RSS, the 10,000-file manifest's size, and a 30,000-file
          export.json whose files do not exist (a refusal that comes before hashing names the
          4 MiB limit; one that hashed would name a missing file).

Every tool is its own child process, started by GNU ``/usr/bin/time`` for its peak RSS (see
run.py); wall time includes Python start-up. Fresh random data and fresh repositories for every
measurement, a fresh registry (storage on tmpfs) per case. The JSON keeps every wall time, the
machine, the git revision measured and the load average at the start and end of every section.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for _p in (REPO_ROOT, REPO_ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from run import PY, STELLA, Measure, machine, run_measured, tool_argv  # noqa: E402

MIB = 1024 * 1024
GIB = 1024 * MIB
MB = 1e6
MANIFEST_LIMIT = 4 * MIB
SECTIONS = ("latency", "big", "many", "startup", "scale")
IMPORTTIME_BEFORE = "84f2edd^"  # the revision before lazy imports (issue 12)


@dataclass(frozen=True)
class Sizes:
    lat_files: int = 300
    lat_runs: int = 3
    lat_oras_runs: int = 1
    big_mib: tuple[int, ...] = (512, 1024)
    big_runs: int = 3
    many_files: int = 2000
    many_runs: int = 3
    startup_runs: int = 10
    scale_files: tuple[int, ...] = (2500, 5000, 10000)
    scale_mib: tuple[int, ...] = (1024, 2560, 5120)
    refuse_files: int = 30000
    file_kib: int = 32


FULL = Sizes()
QUICK = Sizes(
    lat_files=40,
    lat_runs=1,
    big_mib=(16, 32),
    big_runs=1,
    many_files=200,
    many_runs=1,
    startup_runs=3,
    scale_files=(250, 500, 1000),
    scale_mib=(32, 80, 160),
)

# Goal thresholds (the numbers; "linear" and "flat" are ours, stated in the table).
LINEAR_MAX = 1.25  # (t_largest / t_smallest) / (size_largest / size_smallest)
FLAT_MAX = 1.25  # peak RSS largest / smallest
RSS_MAX_MB = 100.0


# --------------------------------------------------------------------------- data


def write_fresh(path: Path, size: int) -> str:
    """``size`` fresh random bytes; the sha256 digest. Large files reuse one 16 MiB random block,
    each 16 MiB piece starting with 32 new random bytes (no two pieces, no two files equal)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        if size <= 16 * MIB:
            data = os.urandom(size)
            fh.write(data)
            h.update(data)
        else:
            block = bytearray(os.urandom(16 * MIB))
            left = size
            while left > 0:
                block[:32] = os.urandom(32)
                piece = memoryview(block)[: min(left, len(block))]
                fh.write(piece)
                h.update(piece)
                left -= len(piece)
    return "sha256:" + h.hexdigest()


def make_bundle(root: Path, files: dict[str, int], export_id: str, *, write: bool = True) -> Path:
    """A valid bundle of fresh random files (``write=False``: export.json only, fake digests)."""
    from tests.support.bundles import make_bundle as base_bundle
    from tests.support.bundles import read_export_json, write_export_json

    base_bundle(root, {}, export_id=f"bench-{export_id}")  # the schema wants [a-z0-9-]{6,64}
    entries = []
    for rel, size in sorted(files.items()):
        digest = (
            write_fresh(root / rel, size) if write else "sha256:" + hashlib.sha256(rel.encode()).hexdigest()
        )
        entries.append({"path": rel, "digest": digest, "bytes": size})
    doc = read_export_json(root)
    doc["contents"] = entries
    write_export_json(root, doc)
    return root


def small_files(n: int, kib: int) -> dict[str, int]:
    return {f"files/f{i:05d}.bin": kib * 1024 for i in range(n)}


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def rnd(x: float | None, n: int = 3) -> float | None:
    return None if x is None else round(x, n)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --------------------------------------------------------------------------- the suite


class Suite:
    def __init__(self, args: argparse.Namespace, sizes: Sizes) -> None:
        self.args = args
        self.sizes = sizes
        self.work = Path(args.workdir)
        self.doc: dict[str, Any] = {"sections": {}, "loadavg": {}}
        self.failures: list[str] = []
        self._registry: Any = None

    def log(self, msg: str) -> None:
        print(msg, flush=True)

    # ------------------------------------------------------------------ helpers
    @contextmanager
    def registry(self, name: str, base: Path | None = None) -> Iterator[str]:
        from tests.support.registry import start_registry

        root = (base or self.work) / f"registry-{name}"
        reg = start_registry(root)
        try:
            yield str(reg.host)
        finally:
            reg.stop()
            shutil.rmtree(root, ignore_errors=True)

    def measure(self, label: str, argv: list[str], *, expect: int = 0) -> Measure | None:
        m = run_measured(argv, log=self.work / "child.log")
        if m.code != expect:
            self.failures.append(f"{label}: exit {m.code}: {m.err.strip()[-400:]}")
            self.log(f"  {label:44} FAILED exit {m.code}: {m.err.strip()[-300:]}")
            return None
        self.log(f"  {label:44} {m.wall:8.2f} s {m.rss / MB:7.1f} MB RSS")
        return m

    def stella_push(self, bundle: Path, ref: str) -> list[str]:
        return [STELLA, "push", str(bundle), ref, "-q"]

    def stella_pull(self, ref: str, out: Path) -> list[str]:
        return [STELLA, "pull", ref, "-o", str(out), "-q", "--ledger", str(self.work / "ledger.db")]

    def stella_verify(self, ref: str) -> list[str]:
        return [STELLA, "verify", ref, "-q", "--ledger", str(self.work / "ledger.db")]

    def section(self, name: str, fn: Callable[[], dict[str, Any]]) -> None:
        self.log(f"== {name} (load average {' '.join(map(str, loadavg()))})")
        start_load = loadavg()
        t0 = time.time()
        try:
            result = fn()
        except Exception as exc:  # one broken section must not lose the others
            self.failures.append(f"{name}: {type(exc).__name__}: {exc}")
            self.log(f"  {name} FAILED: {type(exc).__name__}: {exc}")
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["elapsed_s"] = round(time.time() - t0, 1)
        self.doc["sections"][name] = result
        self.doc["loadavg"][name] = {"start": start_load, "end": loadavg()}
        self.log(f"   {name}: {result['elapsed_s']} s")

    # ------------------------------------------------------------------ (a) latency
    def latency(self) -> dict[str, Any]:
        from latency import measure_latency

        s = self.sizes
        return measure_latency(
            self.work / "latency",
            files=s.lat_files,
            file_kib=s.file_kib,
            rtt_ms=self.args.rtt_ms,
            runs={"stella-oci": s.lat_runs, "oras-py": s.lat_oras_runs},
            log=self.log,
        )

    # ------------------------------------------------------------------ (b) big blobs
    def big(self) -> dict[str, Any]:
        s = self.sizes
        walls: dict[str, list[float]] = {}
        rss: dict[str, list[float]] = {}

        def keep(key: str, m: Measure | None) -> None:
            if m is not None:
                walls.setdefault(key, []).append(m.wall)
                rss.setdefault(key, []).append(m.rss / MB)

        for rep in range(s.big_runs):
            for mib in s.big_mib:
                with self.registry(f"big-{mib}-{rep}") as host:
                    order = ["stella-oci", "raw-requests"]
                    if rep % 2:
                        order.reverse()
                    for tool in order:  # each its own fresh bytes: nothing is already there
                        bundle = make_bundle(
                            self.work / "big" / "bundle", {"db/blob.bin": mib * MIB}, f"big-{mib}-{rep}"
                        )
                        repo = f"big/{tool}"
                        argv = (
                            self.stella_push(bundle, f"{host}/{repo}:bench")
                            if tool == "stella-oci"
                            else tool_argv(tool, "push", host, repo, "bench", bundle, None)
                        )
                        keep(f"{mib}/push/{tool}", self.measure(f"big {mib} MiB push {tool}", argv))
                        shutil.rmtree(bundle, ignore_errors=True)
                    for tool in order:
                        out = self.work / "big" / f"pulled-{tool}"
                        argv = (
                            self.stella_pull(f"{host}/big/stella-oci:bench", out)
                            if tool == "stella-oci"
                            else tool_argv(tool, "pull", host, "big/stella-oci", "bench", out, None)
                        )
                        keep(f"{mib}/pull/{tool}", self.measure(f"big {mib} MiB pull {tool}", argv))
                        shutil.rmtree(out, ignore_errors=True)
        return {
            "sizes_mib": list(s.big_mib),
            "runs": s.big_runs,
            "wall_s": {k: [round(w, 3) for w in v] for k, v in walls.items()},
            "median_wall_s": {k: rnd(median(v)) for k, v in walls.items()},
            "median_peak_rss_MB": {k: rnd(median(v), 1) for k, v in rss.items()},
            "max_peak_rss_MB": {k: rnd(max(v), 1) for k, v in rss.items()},
        }

    # ------------------------------------------------------------------ (c) many files
    def many(self) -> dict[str, Any]:
        s = self.sizes
        tools = ["stella-oci", "raw-requests-8t", "oras-py"]
        walls: dict[str, list[float]] = {t: [] for t in tools}
        rss: dict[str, list[float]] = {t: [] for t in tools}
        for rep in range(s.many_runs):
            with self.registry(f"many-{rep}") as host:
                order = tools[rep % 3 :] + tools[: rep % 3]  # each tool goes first once in 3 runs
                for tool in order:  # each its own fresh files: no blob is already in the registry
                    bundle = make_bundle(
                        self.work / "many" / "bundle", small_files(s.many_files, s.file_kib), f"many-{rep}"
                    )
                    repo = f"many/{tool}"
                    argv = (
                        self.stella_push(bundle, f"{host}/{repo}:bench")
                        if tool == "stella-oci"
                        else tool_argv(tool, "push", host, repo, "bench", bundle, None)
                    )
                    m = self.measure(f"many {s.many_files} push {tool}", argv)
                    if m is not None:
                        walls[tool].append(m.wall)
                        rss[tool].append(m.rss / MB)
                    shutil.rmtree(bundle, ignore_errors=True)
        return {
            "files": s.many_files,
            "file_kib": s.file_kib,
            "runs": s.many_runs,
            "wall_s": {k: [round(w, 3) for w in v] for k, v in walls.items()},
            "median_wall_s": {k: rnd(median(v)) for k, v in walls.items()},
            "median_peak_rss_MB": {k: rnd(median(v), 1) for k, v in rss.items()},
        }

    # ------------------------------------------------------------------ (d) start-up
    def startup(self) -> dict[str, Any]:
        import startup as st

        s = self.sizes
        times = st.measure(s.startup_runs)
        base = statistics.median(times[st.BASELINE])
        out: dict[str, Any] = {
            "runs": s.startup_runs,
            "wall_s": {k: [round(w, 4) for w in v] for k, v in times.items()},
            "median_wall_s": {k: round(statistics.median(v), 4) for k, v in times.items()},
            "ratio_to_import_click": {k: round(statistics.median(v) / base, 2) for k, v in times.items()},
        }
        for k, v in out["median_wall_s"].items():
            self.log(f"  {k:44} {v * 1000:8.1f} ms  {out['ratio_to_import_click'][k]:.2f}x import click")
        # A push of a 3-file bundle vs the same three uploads (and config + manifest) by requests.
        walls: dict[str, list[float]] = {"stella-oci": [], "requests-script": []}
        rss: dict[str, list[float]] = {"stella-oci": [], "requests-script": []}
        with self.registry("push3") as host:
            for rep in range(s.startup_runs):
                order = ["stella-oci", "requests-script"]
                if rep % 2:
                    order.reverse()
                for tool in order:
                    bundle = make_bundle(
                        self.work / "push3" / f"b{rep}-{tool}", small_files(3, s.file_kib), f"p3-{rep}-{tool}"
                    )
                    repo = f"push3/{tool}-{rep}"
                    argv = (
                        self.stella_push(bundle, f"{host}/{repo}:bench")
                        if tool == "stella-oci"
                        else tool_argv("raw-requests", "push", host, repo, "bench", bundle, None)
                    )
                    m = self.measure(f"push 3 files {tool}", argv)
                    if m is not None:
                        walls[tool].append(m.wall)
                        rss[tool].append(m.rss / MB)
            out["push3"] = {
                "wall_s": {k: [round(w, 4) for w in v] for k, v in walls.items()},
                "median_wall_s": {k: rnd(median(v), 4) for k, v in walls.items()},
                "median_peak_rss_MB": {k: rnd(median(v), 1) for k, v in rss.items()},
                "requests_script": "benchmarks/run.py _worker raw-requests push: HEAD + POST + PUT per "
                "file, then the config and the manifest",
            }
            bundle = make_bundle(self.work / "push3" / "it", small_files(3, s.file_kib), "p3-importtime")
            out["importtime"] = {
                "--version": importtime([PY, "-X", "importtime", "-m", "stella_oci", "--version"]),
                "push": importtime(
                    [PY, "-X", "importtime", "-m", "stella_oci", "push", str(bundle), f"{host}/it/x:b", "-q"]
                ),
            }
        before = self.args.importtime_before
        if before:
            out["importtime_before"] = importtime_at(before, self.work / "before")
        return out

    # ------------------------------------------------------------------ (e) scale
    def scale(self) -> dict[str, Any]:
        s = self.sizes
        rows: list[dict[str, Any]] = []
        # The single-file sizes run on disk, not tmpfs: on this VM, guest memory not touched
        # lately is slow to touch (the host backs it on first touch: `dd` of 5 GiB into /dev/shm
        # took 4.4 s, a second 5 GiB file 12.6 s, a third 15.2 s), so a 5 GiB upload into tmpfs
        # beside a 5 GiB source measured the VM, for every client alike (benchmarks/README.md).
        disk = Path(tempfile.mkdtemp(prefix="stella-issue15-scale-", dir=self.args.disk_workdir))

        def one(kind: str, n: int, files: dict[str, int], payload: int) -> None:
            base = self.work if kind == "files" else disk
            with self.registry(f"scale-{kind}-{n}", base) as host:
                ref = f"{host}/scale/{kind}-{n}:bench"
                bundle = make_bundle(base / "scale" / "bundle", files, f"scale-{kind}-{n}")
                row: dict[str, Any] = {"kind": kind, "n": n, "payload_bytes": payload}
                label = f"{n} files" if kind == "files" else f"{n} MiB"
                pulled = base / "scale" / "pulled"
                for op, argv in (
                    ("push", self.stella_push(bundle, ref)),
                    ("pull", self.stella_pull(ref, pulled)),
                    ("verify", self.stella_verify(ref)),
                ):
                    if op == "pull":  # make room: the registry holds the bytes now
                        shutil.rmtree(bundle, ignore_errors=True)
                    m = self.measure(f"scale {label} {op}", argv)
                    row[op] = (
                        None
                        if m is None
                        else {"wall_s": round(m.wall, 3), "peak_rss_MB": round(m.rss / MB, 1)}
                    )
                    shutil.rmtree(pulled, ignore_errors=True)
                if kind == "files":
                    row["manifest_bytes"] = manifest_size(host, f"scale/{kind}-{n}", "bench")
                else:  # a raw streamed GET and PUT (fresh bytes) at the same size: the environment's own growth
                    m = self.measure(
                        f"scale {label} pull raw-requests",
                        tool_argv("raw-requests", "pull", host, f"scale/{kind}-{n}", "bench", pulled, None),
                    )
                    row["pull_raw"] = None if m is None else {"wall_s": round(m.wall, 3)}
                    shutil.rmtree(pulled, ignore_errors=True)
                    raw = make_bundle(base / "scale" / "raw", files, f"scale-raw-{n}")
                    m = self.measure(
                        f"scale {label} push raw-requests",
                        tool_argv("raw-requests", "push", host, "scale/raw", "bench", raw, None),
                    )
                    row["push_raw"] = None if m is None else {"wall_s": round(m.wall, 3)}
                    shutil.rmtree(raw, ignore_errors=True)
                rows.append(row)
                shutil.rmtree(bundle, ignore_errors=True)

        try:
            for n in s.scale_files:
                one("files", n, small_files(n, s.file_kib), n * s.file_kib * 1024)
            for mib in s.scale_mib:
                one("bytes", mib, {"db/blob.bin": mib * MIB}, mib * MIB)
        finally:
            shutil.rmtree(disk, ignore_errors=True)
        return {
            "rows": rows,
            "file_kib": s.file_kib,
            "storage": {"files": self.doc["storage"], "single file": f"disk ({disk.parent})"},
            "refusal": self.refusal(),
        }

    def refusal(self) -> dict[str, Any]:
        """A 30,000-file export.json whose files are absent: refused for its manifest size (before
        any file is read) or for a missing file (it would have hashed first)."""
        n = self.sizes.refuse_files
        bundle = make_bundle(self.work / "refuse", small_files(n, self.sizes.file_kib), "refuse", write=False)
        with self.registry("refuse") as host:
            t0 = time.perf_counter()
            res = subprocess.run(
                [STELLA, "push", str(bundle), f"{host}/refuse/x:bench", "--format", "json"],
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - t0
        shutil.rmtree(bundle, ignore_errors=True)
        text = (res.stdout + res.stderr).strip()
        names_limit = "4 MiB" in text or "4194304" in text
        self.log(f"  refusal of {n} files: exit {res.returncode} in {wall:.2f} s: {text[-300:]}")
        return {
            "files": n,
            "exit": res.returncode,
            "wall_s": round(wall, 3),
            "message": text[-1500:],
            "refused_before_hashing": res.returncode == 2 and names_limit,
        }


# --------------------------------------------------------------------------- probes


def manifest_size(host: str, repo: str, tag: str) -> int | None:
    import requests

    try:
        r = requests.get(
            f"http://{host}/v2/{repo}/manifests/{tag}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            timeout=30,
        )
        r.raise_for_status()
        return len(r.content)
    except requests.RequestException:
        return None


def importtime(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, top: int = 12
) -> dict[str, Any]:
    """``python -X importtime``: the total and the top entries by cumulative time."""
    res = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd or REPO_ROOT)
    entries = []
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        try:
            self_us, cum_us, name = line[len("import time:") :].split("|", 2)
            entries.append((int(cum_us), int(self_us), name[1:].rstrip()))
        except ValueError:
            continue
    top_level = [e for e in entries if not e[2].startswith("  ")]
    total = sum(e[0] for e in top_level)
    entries.sort(reverse=True)
    return {
        "argv": shlex.join(argv[1:]),
        "exit": res.returncode,
        "modules": len(entries),
        "total_ms": round(total / 1000, 1),
        "top": [
            {
                "module": n.strip(),
                "depth": (len(n) - len(n.lstrip())) // 2,
                "self_ms": round(sf / 1000, 1),
                "cumulative_ms": round(c / 1000, 1),
            }
            for c, sf, n in entries[:top]
        ],
    }


def compile_bytecode(package: Path) -> str:
    """Compile the package's bytecode once, as ``pip install`` does, so that every measured
    process runs the installed product. Without it, a checkout run with PYTHONDONTWRITEBYTECODE=1
    (set on the shared machines) recompiles every stella_oci module in every process: ~500 M
    instructions per start that no installed user pays. The anchors' libraries (click, requests,
    oras) are pip-installed, so they are compiled already."""
    subprocess.run([PY, "-m", "compileall", "-q", str(package)], check=True)
    return "compiled by `python -m compileall` before the run, as `pip install` does"


def importtime_at(rev: str, dest: Path) -> dict[str, Any]:
    """Import time of ``--version`` at an older revision (its stella_oci/ from ``git archive``)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", rev],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", commit, "stella_oci"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        compile_bytecode(dest / "stella_oci")  # compiled as now's is, so before and now compare
    except (subprocess.CalledProcessError, OSError) as exc:
        return {"revision": rev, "error": str(exc)}
    env = dict(os.environ, PYTHONPATH=str(dest))
    # cwd=dest: ``python -m`` puts the working directory first on sys.path, before PYTHONPATH
    out = importtime([PY, "-X", "importtime", "-m", "stella_oci", "--version"], env=env, cwd=dest)
    out["revision"] = f"{rev} ({commit})"
    shutil.rmtree(dest, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- goals


def _goal(
    gid: str, what: str, value: float | None, goal: str, ok: bool | None, detail: str, unit: str = "x"
) -> dict[str, Any]:
    shown = "-" if value is None else (f"{value:.2f}{unit}" if unit == "x" else f"{value:g} {unit}")
    return {
        "id": gid,
        "what": what,
        "value": value,
        "shown": shown,
        "goal": goal,
        "pass": ok,
        "detail": detail,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b to 4 places (tables show 2; a verdict compares this, so 1.1549 is not 1.15)."""
    return round(a / b, 4) if a and b else None


def goals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    sec = doc["sections"]
    out: list[dict[str, Any]] = []
    lat = sec.get("latency")
    if lat is not None:
        med = lat.get("median_wall_s", {})
        st, oras, ideal = med.get("stella-oci"), med.get("oras-py"), lat.get("ideal_s")
        r = _ratio(oras, st)
        cfg = lat.get("config", {})
        head = f"{cfg.get('files')} x {cfg.get('file_kib')} KiB at {cfg.get('rtt_ms')} ms RTT"
        out.append(
            _goal(
                "a1",
                f"latency {head}: oras-py / stella-oci",
                r,
                ">= 10x",
                r is not None and r >= 10,
                f"oras-py {oras} s / stella-oci {st} s",
            )
        )
        r = _ratio(st, ideal)
        out.append(
            _goal(
                "a2",
                f"latency {head}: stella-oci / ideal",
                r,
                "<= 1.5x",
                r is not None and r <= 1.5,
                f"stella-oci {st} s / ideal {ideal} s = {lat.get('ideal_formula')}",
            )
        )
        per = (lat.get("requests_per_new_blob") or {}).get("stella-oci")
        if per:
            last = per[-1]
            kinds = ", ".join(f"{k} {v:g}" for k, v in last.items() if k[:1].isupper())
            up = last.get("upload_requests", last.get("blob_requests", 0.0))
            out.append(
                _goal(
                    "a3",
                    "latency: stella-oci upload requests (POST + PATCH + PUT) per new blob (proxy count)",
                    up,
                    "<= 2 (one POST + one PUT)",
                    up <= 2.0,
                    f"per new blob: {kinds}; {last.get('new_blobs')} new blobs, "
                    f"{last.get('probes_total', '?')} existence probes (HEAD blob) in all; "
                    f"peak open connections {last.get('peak_open_connections')}",
                    unit="",
                )
            )
            orasper = ((lat.get("requests_per_new_blob") or {}).get("oras-py") or [{}])[-1]
            if orasper:
                kinds = ", ".join(f"{k} {v:g}" for k, v in orasper.items() if k[:1].isupper())
                out.append(
                    _goal(
                        "a4",
                        "latency: oras-py requests per new blob, probes included (information)",
                        orasper.get("blob_requests"),
                        "-",
                        None,
                        f"per new blob: {kinds}",
                        unit="",
                    )
                )
    big = sec.get("big")
    if big is not None and "median_wall_s" in big:
        med = big["median_wall_s"]
        for i, mib in enumerate(big["sizes_mib"]):
            st, raw = med.get(f"{mib}/push/stella-oci"), med.get(f"{mib}/push/raw-requests")
            r = _ratio(st, raw)
            out.append(
                _goal(
                    f"b{i + 1}",
                    f"big {mib} MiB push: stella-oci / raw streamed PUT",
                    r,
                    "<= 1.15x",
                    r is not None and r <= 1.15,
                    f"{st} s / {raw} s",
                )
            )
        rss = [v for k, v in big["max_peak_rss_MB"].items() if k.endswith("/stella-oci") and v is not None]
        top = max(rss) if rss else None
        out.append(
            _goal(
                "b3",
                "big: stella-oci peak RSS, push and pull (largest of all runs)",
                top,
                f"< {RSS_MAX_MB:g} MB",
                top is not None and top < RSS_MAX_MB,
                "raw client: "
                + ", ".join(f"{k} {v}" for k, v in big["max_peak_rss_MB"].items() if "raw" in k),
                unit="MB",
            )
        )
        for i, mib in enumerate(big["sizes_mib"]):
            st, raw = med.get(f"{mib}/pull/stella-oci"), med.get(f"{mib}/pull/raw-requests")
            out.append(
                _goal(
                    f"b{len(big['sizes_mib']) + 2 + i}",
                    f"big {mib} MiB pull: stella-oci / raw GET (information: it verifies, raw does not)",
                    _ratio(st, raw),
                    "-",
                    None,
                    f"{st} s / {raw} s",
                )
            )
    many = sec.get("many")
    if many is not None and "median_wall_s" in many:
        med = many["median_wall_s"]
        st, floor, oras = med.get("stella-oci"), med.get("raw-requests-8t"), med.get("oras-py")
        head = f"{many['files']} x {many['file_kib']} KiB loopback"
        r = _ratio(st, floor)
        out.append(
            _goal(
                "c1",
                f"many {head}: stella-oci / 8-thread raw floor",
                r,
                "<= 1.15x",
                r is not None and r <= 1.15,
                f"{st} s / {floor} s",
            )
        )
        r = _ratio(oras, st)
        out.append(
            _goal(
                "c2",
                f"many {head}: oras-py / stella-oci",
                r,
                ">= 2x",
                r is not None and r >= 2,
                f"{oras} s / {st} s",
            )
        )
    stu = sec.get("startup")
    if stu is not None and "ratio_to_import_click" in stu:
        rat, med = stu["ratio_to_import_click"], stu["median_wall_s"]
        base = med.get('python -c "import click"')
        for gid, name in (("d1", "stella-oci --version"), ("d2", "stella-oci --help")):
            r = rat.get(name)
            out.append(
                _goal(
                    gid,
                    f"start-up: {name} / python -c 'import click'",
                    r,
                    "< 2x",
                    r is not None and r < 2,
                    f"{med.get(name)} s / {base} s, median of {stu['runs']}",
                )
            )
        p3 = stu.get("push3", {}).get("median_wall_s", {})
        r = _ratio(p3.get("stella-oci"), p3.get("requests-script"))
        out.append(
            _goal(
                "d3",
                "start-up: push of a 3-file bundle / requests script",
                r,
                "< 2x",
                r is not None and r < 2,
                f"{p3.get('stella-oci')} s / {p3.get('requests-script')} s, median of {stu['runs']}",
            )
        )
    sc = sec.get("scale")
    if sc is not None and "rows" in sc:
        out += scale_goals(sc)
    return out


def scale_goals(sc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rows = sc["rows"]
    files = [r for r in rows if r["kind"] == "files"]
    if files:
        big = files[-1]
        mb = big.get("manifest_bytes")
        out.append(
            _goal(
                "e1",
                f"scale: manifest of {big['n']:,} files / 4 MiB limit",
                _ratio(mb, MANIFEST_LIMIT),
                "< 1x (fits), else refused before hashing",
                mb is not None and mb < MANIFEST_LIMIT,
                f"{mb} bytes",
            )
        )
    ref = sc.get("refusal")
    if ref:
        out.append(
            _goal(
                "e2",
                f"scale: {ref['files']:,}-file export refused before hashing (its files absent)",
                ref["wall_s"],
                "exit 2 naming the 4 MiB limit",
                bool(ref["refused_before_hashing"]),
                f"exit {ref['exit']}",
                unit="s",
            )
        )
    ids = iter(range(3, 20))
    for kind, label, unit in (("files", "files", "files"), ("bytes", "single file", "MiB")):
        group = [r for r in rows if r["kind"] == kind]
        if len(group) < 2:
            continue
        small, large = group[0], group[-1]
        factor = large["n"] / small["n"]
        for op in ("push", "pull", "verify"):
            a, b = small.get(op), large.get(op)
            growth = round(b["wall_s"] / a["wall_s"] / factor, 4) if a and b else None
            series = ", ".join(
                f"{r['n']:,} {unit}: {r[op]['wall_s']} s" if r.get(op) else f"{r['n']:,} {unit}: failed"
                for r in group
            )
            ra, rb = small.get(f"{op}_raw"), large.get(f"{op}_raw")
            if ra and rb:  # the raw streamed GET/PUT at the same sizes: the environment's own growth
                series += f"; raw {'PUT' if op == 'push' else 'GET'} growth {rb['wall_s'] / ra['wall_s'] / factor:.2f}x (" + ", ".join(
                    f"{r['n']:,} {unit}: {r[op + '_raw']['wall_s']} s" for r in group if r.get(op + "_raw")
                ) + ")"
            out.append(
                _goal(
                    f"e{next(ids)}",
                    f"scale {label} {op}: time growth / size growth ({small['n']:,} -> {large['n']:,} {unit})",
                    growth,
                    f"<= {LINEAR_MAX}x (linear)",
                    growth is not None and growth <= LINEAR_MAX,
                    series,
                )
            )
        rss = [r[op]["peak_rss_MB"] for r in group for op in ("push", "pull", "verify") if r.get(op)]
        flat = [
            round(large[op]["peak_rss_MB"] / small[op]["peak_rss_MB"], 4)
            for op in ("push", "pull", "verify")
            if small.get(op) and large.get(op)
        ]
        worst = max(flat) if flat else None
        out.append(
            _goal(
                f"e{next(ids)}",
                f"scale {label}: peak RSS largest / smallest (worst of push, pull, verify)",
                worst,
                f"<= {FLAT_MAX}x and all < {RSS_MAX_MB:g} MB",
                worst is not None and worst <= FLAT_MAX and max(rss) < RSS_MAX_MB,
                f"peak RSS {min(rss)}-{max(rss)} MB",
            )
        )
    return out


# --------------------------------------------------------------------------- output


def verdict(g: dict[str, Any]) -> str:
    return "-" if g["pass"] is None else ("PASS" if g["pass"] else "MISS")


def goals_table(doc: dict[str, Any]) -> list[str]:
    lines = ["| # | ratio | measured | goal | met | detail |", "|---|---|---:|---|:---:|---|"]
    for g in doc["goals"]:
        lines.append(
            f"| {g['id']} | {g['what']} | {g['shown']} | {g['goal']} | {verdict(g)} | {g['detail']} |"
        )
    return lines


def header(doc: dict[str, Any]) -> list[str]:
    m = doc["machine"]
    la = doc["loadavg"]
    partial = (
        []
        if doc.get("complete", True)
        else [f"**Incomplete run**: only {', '.join(doc.get('sections_run', []))} finished."]
    )
    return [
        *partial,
        f"One run of `{doc['command']}`, {doc['started_utc']} to {doc['finished_utc']} "
        f"({doc['elapsed_s']:.0f} s), revision {m.get('git', '?')}.",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, Linux {m['kernel']}, Python "
        f"{m['python']}, {m['versions'].get('registry', '?')}, oras-py {m['versions'].get('oras-py', '?')}. "
        f"Load average (1/5/15 min) at the start {' '.join(map(str, la['start']))}, at the end "
        f"{' '.join(map(str, la['end']))}.",
    ]


def details(doc: dict[str, Any]) -> list[str]:
    """case | tool | wall | peak RSS | vs anchor | vs floor, for every measurement in the run."""
    sec = doc["sections"]
    lines = [
        "| case | tool | wall (s) | peak RSS (MB) | vs anchor | vs floor |",
        "|---|---|---:|---:|---|---|",
    ]

    def row(case: str, tool: str, wall: Any, rss: Any = None, anchor: str = "", floor: str = "") -> None:
        w = "-" if wall is None else f"{wall:.2f}" if isinstance(wall, float) else str(wall)
        r = "-" if rss is None else f"{rss:.0f}"
        lines.append(f"| {case} | {tool} | {w} | {r} | {anchor} | {floor} |")

    def x(a: float | None, b: float | None) -> str:
        r = _ratio(a, b)
        return "-" if r is None else f"{r:.2f}x"

    lat = sec.get("latency")
    if lat and "median_wall_s" in lat:
        c = lat["config"]
        case = f"{c['files']} x {c['file_kib']} KiB, {c['rtt_ms']:g} ms RTT"
        med = lat["median_wall_s"]
        st, oras, ideal = med.get("stella-oci"), med.get("oras-py"), lat["ideal_s"]
        row(case, "stella-oci", st, None, f"{x(oras, st)} faster than oras-py", f"{x(st, ideal)} the ideal")
        row(case, "oras-py", oras, None, "anchor", f"{x(oras, ideal)} the ideal")
        row(case, "ideal (floor)", ideal, None, "", lat["ideal_formula"])
    big = sec.get("big")
    if big and "median_wall_s" in big:
        med, rss = big["median_wall_s"], big["median_peak_rss_MB"]
        for mib in big["sizes_mib"]:
            for op in ("push", "pull"):
                raw = med.get(f"{mib}/{op}/raw-requests")
                for tool in ("stella-oci", "raw-requests"):
                    k = f"{mib}/{op}/{tool}"
                    is_raw = tool == "raw-requests"
                    row(
                        f"{mib} MiB {op}",
                        tool if not is_raw else f"raw streamed {'PUT' if op == 'push' else 'GET'}",
                        med.get(k),
                        rss.get(k),
                        "anchor and floor" if is_raw else f"{x(med.get(k), raw)} raw",
                        "" if is_raw else f"{x(med.get(k), raw)} raw",
                    )
    many = sec.get("many")
    if many and "median_wall_s" in many:
        med, rss = many["median_wall_s"], many["median_peak_rss_MB"]
        case = f"{many['files']} x {many['file_kib']} KiB push"
        st, floor, oras = med.get("stella-oci"), med.get("raw-requests-8t"), med.get("oras-py")
        row(
            case,
            "stella-oci",
            st,
            rss.get("stella-oci"),
            f"{x(oras, st)} faster than oras-py",
            f"{x(st, floor)} the floor",
        )
        row(case, "oras-py", oras, rss.get("oras-py"), "anchor", f"{x(oras, floor)} the floor")
        row(case, "raw, 8 threads, no hashing (floor)", floor, rss.get("raw-requests-8t"), "", "floor")
    stu = sec.get("startup")
    if stu and "median_wall_s" in stu:
        med = stu["median_wall_s"]
        base = med.get('python -c "import click"')
        for name in ("stella-oci --version", "stella-oci --help"):
            row(name, "stella-oci", med.get(name), None, f"{x(med.get(name), base)} import click", "")
        row('python -c "import click"', "python", base, None, "anchor", "")
        p3 = stu.get("push3", {}).get("median_wall_s", {})
        p3rss = stu.get("push3", {}).get("median_peak_rss_MB", {})
        st, rq = p3.get("stella-oci"), p3.get("requests-script")
        row("push 3 x 32 KiB", "stella-oci", st, p3rss.get("stella-oci"), f"{x(st, rq)} requests script", "")
        row("push 3 x 32 KiB", "requests script", rq, p3rss.get("requests-script"), "anchor", "")
    sc = sec.get("scale")
    if sc and "rows" in sc:
        for r in sc["rows"]:
            label = (
                f"{r['n']:,} files x {sc['file_kib']} KiB" if r["kind"] == "files" else f"{r['n']:,} MiB file"
            )
            for op in ("push", "pull", "verify"):
                m = r.get(op)
                mbps = f"{r['payload_bytes'] / m['wall_s'] / MB:.0f} MB/s" if m else ""
                extra = (
                    f"; manifest {r['manifest_bytes']:,} bytes"
                    if op == "push" and r.get("manifest_bytes")
                    else ""
                )
                row(
                    f"scale {label} {op} ({mbps}{extra})",
                    "stella-oci",
                    m["wall_s"] if m else "failed",
                    m["peak_rss_MB"] if m else None,
                    "-",
                    "-",
                )
    return lines


def importtime_lines(doc: dict[str, Any]) -> list[str]:
    stu = doc["sections"].get("startup") or {}
    lines: list[str] = []
    runs = [("now", k, v) for k, v in (stu.get("importtime") or {}).items()]
    if stu.get("importtime_before"):
        runs.insert(
            0,
            (f"before, at {stu['importtime_before'].get('revision')}", "--version", stu["importtime_before"]),
        )
    for when, what, it in runs:
        if "top" not in it:
            lines += [f"`python -X importtime` {what} ({when}): {it.get('error', 'failed')}", ""]
            continue
        lines += [
            f"`python -X importtime -m stella_oci {what}` ({when}): {it['modules']} modules, "
            f"{it['total_ms']} ms in imports; top entries by cumulative time:",
            "",
            "| module | nesting | self (ms) | cumulative (ms) |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {t['module']} | {t['depth']} | {t.get('self_ms', '')} | {t['cumulative_ms']} |"
            for t in it["top"]
        ]
        lines.append("")
    return lines


def importtime_summary(doc: dict[str, Any], top: int = 4) -> list[str]:
    """One line per ``python -X importtime`` run: modules, milliseconds, the heaviest few."""
    stu = doc["sections"].get("startup") or {}
    runs = [(f"now, {k}", v) for k, v in (stu.get("importtime") or {}).items()]
    if stu.get("importtime_before"):
        runs.insert(
            0, (f"before ({stu['importtime_before'].get('revision')}), --version", stu["importtime_before"])
        )
    lines = []
    for label, it in runs:
        if "top" not in it:
            continue
        heavy = ", ".join(f"{t['module']} {t['cumulative_ms']:g}" for t in it["top"][:top])
        lines.append(
            f"`python -X importtime` {label}: {it['modules']} modules, {it['total_ms']:g} ms in imports "
            f"(largest, cumulative ms: {heavy})"
        )
    return lines


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        *header(doc),
        "",
        *goals_table(doc),
        "",
        *details(doc),
        "",
        *importtime_lines(doc),
    ]
    if doc["failures"]:
        lines += ["Failures:", "", *[f"- {f}" for f in doc["failures"]], ""]
    return "\n".join(lines)


def method(doc: dict[str, Any]) -> list[str]:
    """How the run measured, from its own JSON (README's paragraph above the tables)."""
    z = doc["sizes"]
    lat = (doc["sections"].get("latency") or {}).get("config", {})
    return [
        "Method: every tool runs as its own child process (Python start-up included), peak RSS is "
        "the child's own `ru_maxrss` from GNU `time`; fresh random data, fresh repositories and a "
        f"fresh local distribution registry (storage on {doc['storage']}, plain HTTP on loopback) for "
        f"every case. Latency: {lat.get('rtt_ms', 40):g} ms RTT added by `benchmarks/latency_proxy.py` "
        "(every chunk waits RTT/2 each way; the kernel has no netem), which also counts the requests; "
        f"stella-oci median of {z['lat_runs']}, oras-py {z['lat_oras_runs']} run(s). Big blobs: median "
        f"of {z['big_runs']}, against a streamed `requests` PUT/GET of the open file. Many files: "
        f"median of {z['many_runs']}, against oras-py and an 8-thread raw client that sends POST + PUT "
        "per blob and hashes nothing (the registry's floor from Python). Start-up: median of "
        f"{z['startup_runs']}; stella_oci's bytecode {doc.get('bytecode', 'not recorded')}. "
        "Scale: one run per size; the single-file sizes on "
        f"{((doc['sections'].get('scale') or {}).get('storage') or {}).get('single file', 'the same storage')}"
        " (tmpfs memory is slow to touch for the first time on this VM: benchmarks/README.md), with a "
        "raw streamed PUT and GET at each size for the environment's own growth. Goals are issue 15's; 'linear' means time "
        f"growth / size growth <= {LINEAR_MAX}, 'flat' peak RSS largest / smallest <= {FLAT_MAX} "
        f"and < {RSS_MAX_MB:g} MB.",
    ]


def readme_block(doc: dict[str, Any], json_rel: str) -> str:
    """The README's benchmark section body: one run, its method, machine, goals and every row."""
    md_rel = json_rel[: -len(".json")] + ".md"
    return "\n".join(
        [
            *header(doc),
            "",
            *method(doc),
            "",
            *goals_table(doc),
            "",
            *details(doc),
            "",
            *[f"- {line}" for line in importtime_summary(doc)],
            "",
            f"Raw JSON (every wall time, load averages, requests per blob): [{json_rel}]({json_rel}); "
            f"`python -X importtime` before and after: [{md_rel}]({md_rel}). Method and history: "
            "[benchmarks/README.md](benchmarks/README.md).",
            *(
                ["", f"Failures in this run: {len(doc['failures'])} (see the JSON)."]
                if doc["failures"]
                else []
            ),
        ]
    )


def print_summary(doc: dict[str, Any]) -> None:
    print()
    print(f"{'#':7} {'ratio':78} {'measured':>10}  {'goal':<28} met")
    for g in doc["goals"]:
        print(f"{g['id']:7} {g['what'][:78]:78} {g['shown']:>10}  {g['goal'][:28]:<28} {verdict(g)}")
    for line in importtime_summary(doc):
        print(line.replace("`", ""))
    la = doc["loadavg"]
    print(f"load average start {la['start']} end {la['end']}; elapsed {doc['elapsed_s']:.0f} s")
    if doc["failures"]:
        print(f"{len(doc['failures'])} failure(s): see the JSON")


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no", "stella_oci"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return rev + (" (stella_oci/ modified)" if dirty else "")
    except OSError:
        return "?"


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def override(sizes: Sizes, items: list[str]) -> Sizes:
    """``KEY=VALUE`` overrides of :class:`Sizes` (a tuple field takes ``1,2,3``)."""
    from dataclasses import replace

    changes: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        current = getattr(sizes, key, None)
        if not sep or current is None:
            raise ValueError(f"--set {item}: expected KEY=VALUE with KEY one of {', '.join(vars(sizes))}")
        try:
            parts = tuple(int(v) for v in value.split(","))
        except ValueError:
            raise ValueError(f"--set {item}: {value!r} is not an integer (list)") from None
        changes[key] = parts if isinstance(current, tuple) else parts[0]
    return replace(sizes, **changes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (develop with this)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    ap.add_argument("--rtt-ms", type=float, default=40.0)
    ap.add_argument(
        "--importtime-before",
        default=IMPORTTIME_BEFORE,
        help=f"revision whose --version import time is shown as 'before' ('' for none; default {IMPORTTIME_BEFORE})",
    )
    ap.add_argument("--name", help="results/<name>.json and .md (default issue15, quick: issue15-quick)")
    ap.add_argument("--out", default=str(REPO_ROOT / "benchmarks/results"))
    ap.add_argument("--workdir", help="scratch (default: a new directory in /dev/shm when it has room)")
    ap.add_argument(
        "--disk-workdir",
        default="/var/tmp",
        help="where the scale section's single-file sizes run: a disk file system (default /var/tmp)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one size (e.g. scale_mib=5120 or big_runs=1; tuples comma-separated); "
        f"keys: {', '.join(Sizes.__dataclass_fields__)}",
    )
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    try:
        sizes = override(sizes, args.set)
    except ValueError as exc:
        ap.error(str(exc))
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))}")
    # Every child imports this worktree's stella_oci (the console script's own install may be older).
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    need = 4 * max(sizes.big_mib) * MIB  # (the scale section's big files go to --disk-workdir)
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and shutil.disk_usage(shm).free > need else None
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="stella-issue15-", dir=base)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    name = args.name or ("issue15-quick" if args.quick else "issue15")
    cmd = shlex.join(["python", "benchmarks/issue15.py", *(sys.argv[1:] if argv is None else argv)])
    suite = Suite(args, sizes)
    started = time.time()
    doc = suite.doc
    doc.update(
        {
            "suite": "issue15",
            "quick": args.quick,
            "command": cmd,
            "started_utc": utc_now(),
            "sizes": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(sizes).items()},
            "workdir": args.workdir,
            "storage": "tmpfs (/dev/shm)" if args.workdir.startswith("/dev/shm") else "disk",
        }
    )
    doc["machine"] = {**machine(), "git": git_revision()}
    doc["bytecode"] = compile_bytecode(REPO_ROOT / "stella_oci")
    doc["loadavg"]["start"] = loadavg()
    print(f"{cmd}: workdir {args.workdir}, revision {doc['machine']['git']}, load {doc['loadavg']['start']}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def write(complete: bool) -> None:
        """The results so far (after every section, so an interrupted run keeps what it measured)."""
        doc["complete"] = complete
        doc["sections_run"] = list(doc["sections"])
        doc["loadavg"]["end"] = loadavg()
        doc["finished_utc"] = utc_now()
        doc["elapsed_s"] = round(time.time() - started, 1)
        doc["failures"] = suite.failures
        doc["thresholds"] = {"linear_max": LINEAR_MAX, "flat_max": FLAT_MAX, "rss_max_MB": RSS_MAX_MB}
        doc["goals"] = goals(doc)
        (out / f"{name}.json").write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
        (out / f"{name}.md").write_text(markdown(doc))

    try:
        for name_ in sections:
            suite.section(name_, getattr(suite, name_))
            write(complete=False)
    finally:
        shutil.rmtree(args.workdir, ignore_errors=True)
    write(complete=True)
    print_summary(doc)
    print(f"wrote {out / name}.json and .md; README: python benchmarks/readme_table.py {out / name}.json")
    return 0 if not suite.failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
