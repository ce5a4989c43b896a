"""Push+pull rounds through the seeded fault proxy, shared by the CI soak
(tests/test_soak.py) and the longer one (scripts/soak.py).

One :func:`soak` run starts nothing itself: it is given a registry host (read directly, for
the final check) and a :class:`FaultProxy` in front of it. Each round builds a different
bundle (seeded sizes and contents), pushes it through the proxy with the CLI, pulls it back
through the proxy into a new directory, and compares the pulled tree byte for byte with the
bundle. At the end every manifest pushed is read directly from the registry (not through
the proxy): its bytes must hash to the digest the push printed, and every blob it names must
be there with the stated size and digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.bundles import make_bundle, tree_digests
from tests.support.fault_proxy import KINDS, FaultProxy

REPO = "soak/bundles"


@dataclass
class Round:
    n: int
    push_exit: int
    pull_exit: int | None
    identical: bool | None
    seconds: float
    digest: str | None
    stderr: str = ""


@dataclass
class SoakResult:
    rounds: list[Round] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    whole_manifests: int = 0
    broken_manifests: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return sum(1 for r in self.rounds if r.push_exit == 0 and r.pull_exit == 0 and r.identical)

    def outcomes(self) -> Counter[str]:
        c: Counter[str] = Counter()
        for r in self.rounds:
            if r.push_exit != 0:
                c[f"push exit {r.push_exit}"] += 1
            elif r.pull_exit != 0:
                c[f"pull exit {r.pull_exit}"] += 1
            elif not r.identical:
                c["pulled tree differs"] += 1
            else:
                c["ok"] += 1
        return c


def _cli(args: list[str], extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "TERM": "dumb"})
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "stella_oci", *args, "-q", "--format", "json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _failure(proc: subprocess.CompletedProcess[str]) -> str:
    """What a failed command said (its JSON error is on stdout), for the report."""
    if proc.returncode == 0:
        return ""
    return (proc.stdout[-1500:] + proc.stderr[-1500:]).strip() + "\n"


def _files(rng: random.Random, n: int) -> dict[str, bytes | int]:
    files: dict[str, bytes | int] = {
        "data/round.json": json.dumps({"round": n, "salt": rng.random()}).encode(),
        "data/one-byte.txt": bytes([65 + n % 26]),
        "data/large.bin": rng.randint(64 * 1024, 1536 * 1024),
    }
    for i in range(rng.randint(1, 4)):
        files[f"extra/f{i}.bin"] = rng.randbytes(rng.randint(10, 40_000))
    return files


def soak(
    registry_host: str,
    proxy: FaultProxy,
    workdir: Path,
    *,
    rounds: int,
    rate: float,
    seed: int,
    kinds: tuple[str, ...] = KINDS,
    env: dict[str, str] | None = None,
    log: bool = False,
) -> SoakResult:
    """Run ``rounds`` push+pull rounds at fault ``rate`` (seeded), then check the registry."""
    rng = random.Random(seed)
    result = SoakResult()
    start = time.monotonic()
    proxy.random_faults(seed, rate, kinds)
    pushed: dict[str, str] = {}
    for n in range(rounds):
        t0 = time.monotonic()
        bundle = make_bundle(workdir / f"bundle-{n}", _files(rng, n), export_id=f"exp-soak-{seed}-{n:04d}")
        tag = f"r{n:04d}"
        push = _cli(["push", str(bundle), f"{proxy.host}/{REPO}:{tag}"], env or {})
        rnd = Round(n, push.returncode, None, None, 0.0, None, _failure(push))
        if push.returncode == 0:
            rnd.digest = json.loads(push.stdout)["digest"]
            pushed[tag] = rnd.digest
            out = workdir / f"out-{n}"
            pull = _cli(["pull", f"{proxy.host}/{REPO}@{rnd.digest}", "--output", str(out)], env or {})
            rnd.pull_exit = pull.returncode
            rnd.stderr += _failure(pull)
            if pull.returncode == 0:
                rnd.identical = tree_digests(out) == tree_digests(bundle)
        rnd.seconds = time.monotonic() - t0
        result.rounds.append(rnd)
        if log:
            print(
                f"round {n}: push {rnd.push_exit} pull {rnd.pull_exit} identical {rnd.identical} "
                f"{rnd.seconds:.1f} s",
                flush=True,
            )
    proxy.random_faults(seed, 0.0)
    result.faults = Counter(kind for _, _, kind in proxy.injected)
    result.requests = len(proxy.requests)
    for tag, digest in pushed.items():
        problem = check_manifest(registry_host, tag, digest)
        if problem:
            result.broken_manifests.append(f"{tag}: {problem}")
        else:
            result.whole_manifests += 1
    result.seconds = time.monotonic() - start
    return result


def check_manifest(registry_host: str, tag: str, digest: str) -> str | None:
    """Read ``tag`` directly from the registry: None when its manifest hashes to ``digest``
    and every blob it names is there, whole; else what is wrong."""
    from stella_oci.oci import mediatypes as mt
    from stella_oci.transport import RegistryClient, TransportOptions

    client = RegistryClient(registry_host, TransportOptions())
    try:
        got = client.get_manifest(REPO, tag, [mt.OCI_MANIFEST])
        actual = "sha256:" + hashlib.sha256(got.data).hexdigest()
        if actual != digest:
            return f"manifest hashes to {actual}, the push said {digest}"
        doc = json.loads(got.data)
        for desc in [doc["config"], *doc.get("layers", [])]:
            h = hashlib.sha256()
            n = 0
            with client.open_blob(REPO, desc["digest"]) as chunks:
                for chunk in chunks:
                    h.update(chunk)
                    n += len(chunk)
            if n != desc["size"] or "sha256:" + h.hexdigest() != desc["digest"]:
                return f"blob {desc['digest']}: {n} bytes hashing to sha256:{h.hexdigest()}"
        return None
    finally:
        client.close()
