"""Issue 15, scale: memory stays flat with the number of files. push, pull and verify of a
bundle of many small files hold no per-file structure they can do without: the peak traced
memory (tracemalloc, in a child process) grows by at most a few KB per file.

What used to grow: a future (with its condition and waiter) per blob submitted to the pool at
once, and the root manifest parsed a second time by the copy engine (10,000 more descriptors).
The contract keeps some per-file memory (the parsed manifest, export.json's model until its
checks ran, the result's ``layers``): the budget below allows that, with margin, and not the old
growth (tracemalloc, 200 -> 1,000 files, per extra file: push 3.5 KB, pull 2.6 KB, verify 2.7 KB
at 54cac5b; 0.9, 1.1 and 1.2 KB after the compact Descriptor, the slotted contents entries and
bundle records, one parse of the root manifest and the release of what the copy no longer needs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.bundles import make_bundle

SMALL, LARGE = 200, 1000
PER_FILE_BUDGET = 1800
"""Bytes of peak traced memory per extra file, for each of push, pull and verify."""

CHILD = r"""
import json, sys, tracemalloc
from pathlib import Path
from stella_oci import pull, push, verify

out = {}
for label, bundle, ref, dest in json.loads(sys.argv[1]):
    for op, call in (
        ("push", lambda: push(bundle, ref)),
        ("pull", lambda: pull(ref, dest)),
        ("verify", lambda: verify(ref)),
    ):
        call() if (label, op) == ("warm", "push") else None  # imports and caches, outside the measure
        tracemalloc.start(1)
        call()
        out[f"{label} {op}"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
print(json.dumps(out))
"""


def small_bundle(root: Path, n: int) -> Path:
    return make_bundle(root, {f"files/f{i:05d}.bin": f"file {i}\n".encode() for i in range(n)})


def test_peak_memory_per_file_of_push_pull_and_verify(registry, fresh_repo, tmp_path):
    runs = [
        ["warm", str(small_bundle(tmp_path / "warm", 20)), f"{registry.host}/{fresh_repo}-w:v", str(tmp_path / "pw")],
    ]
    for n in (SMALL, LARGE):
        bundle = small_bundle(tmp_path / f"b{n}", n)
        runs.append([str(n), str(bundle), f"{registry.host}/{fresh_repo}-{n}:v", str(tmp_path / f"p{n}")])
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(runs)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "STELLA_OCI_LEDGER": str(tmp_path / "ledger.db")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    peaks = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (tmp_path / f"p{LARGE}" / "files" / f"f{LARGE - 1:05d}.bin").read_bytes() == f"file {LARGE - 1}\n".encode()
    per_file = {op: (peaks[f"{LARGE} {op}"] - peaks[f"{SMALL} {op}"]) / (LARGE - SMALL) for op in ("push", "pull", "verify")}
    print("peak traced bytes per file:", {op: round(v) for op, v in per_file.items()}, peaks)
    for op, value in per_file.items():
        assert value < PER_FILE_BUDGET, f"{op}: {value:.0f} bytes of peak memory per file (budget {PER_FILE_BUDGET})"


def test_manifest_written_a_layer_at_a_time_is_encode_byte_for_byte():
    from stella_oci.export.artifact import EMPTY_CONFIG, encode_manifest, layer_descriptor
    from stella_oci.oci import mediatypes as mt
    from stella_oci.oci.manifest import Manifest, encode

    layers = [
        layer_descriptor(p, "application/json", "sha256:" + f"{i:02x}" * 32, i * 7)
        for i, p in enumerate(['export.json', 'a/"layers":[]', "ünï/cödé ✓.json", "b\\c\n.bin", "z" * 200])
    ]
    for manifest in (
        Manifest(schema_version=2, media_type=mt.OCI_MANIFEST, artifact_type="application/x", config=EMPTY_CONFIG,
                 layers=layers, annotations={"layers": '"layers":[]', "a": "ü"}),
        Manifest(schema_version=2, media_type=mt.OCI_MANIFEST, config=EMPTY_CONFIG, layers=layers[:1]),
        Manifest(schema_version=2, media_type=mt.OCI_MANIFEST, config=EMPTY_CONFIG, layers=[]),
    ):
        assert encode_manifest(manifest) == encode(manifest)
