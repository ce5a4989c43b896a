"""Issue 10 items 4, 5, 9-12: hostile bundles, archives, manifests and arguments.

Each test crafts the attack (a bundle, an archive, a manifest stored in the real registry,
an argument) and asserts the named exit code, a message naming the cause, and that nothing
is left behind: no new entry in $TMPDIR (each CLI run gets a private, empty one), no
partial output, nothing pushed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.export.models import ExportManifest
from stella_oci.jsonio import MAX_JSON_DEPTH, load_json
from stella_oci.oci.digest import check_digest, is_digest
from stella_oci.oci.reference import check_tag, parse_reference
from tests.conftest import _cli_env
from tests.support.bundles import copy_example, make_bundle, read_export_json, write_export_json

model_of = ExportManifest.from_json_obj

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DIGEST = "sha256:" + "ab" * 32


# ---------------------------------------------------------------------------- helpers
def tags_of(registry: Any, repo: str) -> list[str] | None:
    r = requests.get(f"{registry.url}/v2/{repo}/tags/list", timeout=10)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.json().get("tags") or []


# The CLI runs under a small launcher that reports its child's peak RSS (as in test_memory.py:
# a child forked straight from pytest would inherit pytest's high-water mark).
LAUNCHER = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:])\n"
    "sys.stderr.write('\\nMAXRSS_KB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(r.returncode)\n"
)
RSS_LIMIT = 150 * 1000 * 1000


class Cli:
    """The CLI with a private, initially empty $TMPDIR whose emptiness is checked after each
    run, no Python traceback or "internal error" allowed, and the peak RSS kept in ``rss``."""

    def __init__(self, tmp_path: Path) -> None:
        self.cwd = tmp_path
        self.tmpdir = tmp_path / "tmpdir"
        self.tmpdir.mkdir()
        self.rss = 0

    def __call__(self, *args: Any) -> tuple[int, str, str]:
        env = _cli_env({"TMPDIR": str(self.tmpdir)})
        proc = subprocess.run(
            [sys.executable, "-c", LAUNCHER, sys.executable, "-m", "stella_oci", *map(os.fspath, args)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=env,
            cwd=self.cwd,
        )
        err, _, tail = proc.stderr.rpartition("\nMAXRSS_KB=")
        self.rss = int(tail.strip()) * 1024
        left = sorted(p.name for p in self.tmpdir.iterdir())
        assert left == [], f"leftovers in $TMPDIR: {left}"
        assert "Traceback" not in err and "internal error" not in err, err
        return proc.returncode, proc.stdout, err


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def push_example(cli: Cli, tmp_path: Path, ref: str) -> dict[str, Any]:
    bundle = copy_example("mirror-full", tmp_path / "src-bundle")
    code, out, err = cli("push", bundle, ref, "--format", "json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def get_manifest(registry: Any, repo: str, ref: str) -> dict[str, Any]:
    r = requests.get(
        f"{registry.url}/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST}, timeout=10
    )
    r.raise_for_status()
    doc: dict[str, Any] = r.json()
    return doc


def put_manifest(registry: Any, repo: str, tag: str, body: bytes, media_type: str = OCI_MANIFEST) -> str:
    r = requests.put(
        f"{registry.url}/v2/{repo}/manifests/{tag}",
        data=body,
        headers={"Content-Type": media_type},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return str(r.headers["Docker-Content-Digest"])


# ---------------------------------------------------------------------------- item 9: bounded JSON
def test_load_json_refuses_depth_size_duplicates_with_the_callers_error() -> None:
    ok = load_json(nested(MAX_JSON_DEPTH).encode(), "x")
    assert isinstance(ok, list)
    with pytest.raises(VerificationError, match=rf"doc: JSON nested more than {MAX_JSON_DEPTH} levels"):
        load_json(nested(MAX_JSON_DEPTH + 1).encode(), "doc", error=VerificationError)
    # deep enough to exhaust the parser's recursion: still the same named error
    with pytest.raises(InvalidInputError, match="nested more than"):
        load_json(nested(100_000).encode(), "doc")
    with pytest.raises(InvalidInputError, match=r"doc: 12 bytes, more than the 10 allowed"):
        load_json(b'{"a":"1234"}', "doc", max_bytes=10)
    with pytest.raises(InvalidInputError, match="duplicate member 'a'"):
        load_json(b'{"a":1,"a":2}', "doc")


def test_deeply_nested_export_json_is_exit_2_and_nothing_is_pushed(
    registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path
) -> None:
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    text = (bundle / "export.json").read_text()
    (bundle / "export.json").write_text(text.rstrip().rstrip("}") + ', "x": ' + nested(50_000) + "}\n")
    code, out, err = cli("push", bundle, f"{registry.host}/{fresh_repo}:v1")
    assert code == 2, err
    assert "export.json: JSON nested more than 64 levels" in err
    assert tags_of(registry, fresh_repo) is None


def test_deeply_nested_manifest_in_registry_is_exit_3_and_leaves_nothing(
    registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path
) -> None:
    push_example(cli, tmp_path, f"{registry.host}/{fresh_repo}:v1")
    m = get_manifest(registry, fresh_repo, "v1")
    body = json.dumps(m, separators=(",", ":")).encode()
    # Go's JSON reader (the registry) accepts up to 10,000 levels; Python's recursion does not
    body = body[:-1] + b',"x":' + nested(5000).encode() + b"}"
    digest = put_manifest(registry, fresh_repo, "deep", body)
    out_dir = tmp_path / "out"
    for args in (("pull", f"{registry.host}/{fresh_repo}:deep", "--output", out_dir),
                 ("verify", f"{registry.host}/{fresh_repo}@{digest}"),
                 ("inspect", f"{registry.host}/{fresh_repo}:deep")):
        code, out, err = cli(*args)
        assert code == 3, (args, err)
        assert f"{digest}: manifest: JSON nested more than 64 levels" in err, err
    assert not out_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []
    # `manifest` prints the stored bytes (verified against their digest) without parsing them
    code, out, err = cli("manifest", f"{registry.host}/{fresh_repo}:deep")
    assert code == 0, err
    assert out.encode().rstrip(b"\n") == body


def layout_tar(path: Path, index: bytes) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_deeply_nested_index_json_in_oci_archive_is_exit_2(cli: Cli, tmp_path: Path) -> None:
    archive = layout_tar(tmp_path / "a.tar", b'{"schemaVersion":2,"manifests":' + nested(100_000).encode() + b"}")
    for args in (("verify", f"oci-archive:{archive}:v1"), ("pull", f"oci-archive:{archive}:v1", "--output", tmp_path / "o")):
        code, out, err = cli(*args)
        assert code == 2, err
        assert "index.json: JSON nested more than 64 levels" in err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------- item 10: anchored validators
@pytest.mark.parametrize("bad", ["v2\n", "v2\r\n", "\nv2", "v 2"])
def test_tags_with_line_breaks_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid tag"):
        check_tag(bad)


def test_digests_repositories_and_hosts_with_a_trailing_newline_are_refused() -> None:
    assert is_digest(DIGEST) and not is_digest(DIGEST + "\n") and not is_digest(DIGEST.upper())
    with pytest.raises(VerificationError, match="not of the form sha256"):
        check_digest(DIGEST + "\n", "layer", error=VerificationError)
    for ref in (f"localhost:5000/repo@{DIGEST}\n", "localhost:5000/repo\n:v1", "localhost:5000\n/repo:v1",
                f"oci:/tmp/x@{DIGEST}\n"):
        with pytest.raises(InvalidInputError):
            parse_reference(ref)
    # inside the text (not only at the end)
    for ref in ("localhost:5000/re\npo:v1", "localhost:5000/repo:v\n1"):
        with pytest.raises(InvalidInputError):
            parse_reference(ref)


def test_tag_with_newline_never_reaches_an_oci_layout_index(cli: Cli, tmp_path: Path) -> None:
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    layout = tmp_path / "layout"
    code, out, err = cli("push", bundle, f"oci:{layout}:v1", "--tag", "v2\n")
    assert code == 2 and "invalid tag 'v2\\n'" in err, err
    assert not layout.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("--expect-digest", DIGEST + "\n"),
        ("--annotation", "org.example.key\n=1"),
    ],
)
def test_arguments_with_a_trailing_newline_are_exit_2(cli: Cli, tmp_path: Path, args: tuple[str, str]) -> None:
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    verb = "verify" if args[0] == "--expect-digest" else "push"
    target = () if verb == "verify" else (f"oci:{tmp_path / 'layout'}:v1",)
    code, out, err = cli(verb, bundle, *target, *args)
    assert code == 2, err
    assert repr(args[1].split("=")[0]) in err or repr(args[1]) in err, err
    assert not (tmp_path / "layout").exists()


def test_export_json_path_ending_in_newline_is_exit_2(registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", {"data/a.bin": b"a"})
    doc = read_export_json(bundle)
    doc["contents"][0]["path"] = "data/a.bin\n"
    write_export_json(bundle, doc)
    code, out, err = cli("push", bundle, f"{registry.host}/{fresh_repo}:v1")
    assert code == 2, err
    assert "/contents/0/path" in err
    assert tags_of(registry, fresh_repo) is None


def test_layer_title_ending_in_newline_is_exit_3_on_pull(
    registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path
) -> None:
    push_example(cli, tmp_path, f"{registry.host}/{fresh_repo}:v1")
    m = get_manifest(registry, fresh_repo, "v1")
    m["layers"][-1]["annotations"]["org.opencontainers.image.title"] += "\n"
    put_manifest(registry, fresh_repo, "nl", json.dumps(m, separators=(",", ":")).encode())
    out_dir = tmp_path / "out"
    code, out, err = cli("pull", f"{registry.host}/{fresh_repo}:nl", "--output", out_dir)
    assert code == 3, err
    assert "title: unsafe path" in err and "\\n" in err
    assert not out_dir.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


# ---------------------------------------------------------------------------- item 4: bounded reports
def test_fifty_thousand_schema_violations_give_a_short_report(
    registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundle", {"data/a.bin": b"a"})
    doc = read_export_json(bundle)
    doc["contents"] = [{"path": f"data/f{i}.bin", "digest": "md5:x", "bytes": -1} for i in range(50_000)]
    write_export_json(bundle, doc)
    start = time.monotonic()
    code, out, err = cli("push", bundle, f"{registry.host}/{fresh_repo}:v1")
    elapsed = time.monotonic() - start
    assert code == 2, err[:2000]
    assert "(at least 1000 violations, the first 20 listed)" in err
    assert "... and at least 980 more violations not listed" in err
    assert err.count("(rule: ") == 20
    assert len(err) < 10_000, len(err)
    assert cli.rss < RSS_LIMIT, f"peak RSS {cli.rss / 1e6:.1f} MB"
    assert elapsed < 120
    assert tags_of(registry, fresh_repo) is None
    print(f"50k violations: {len(err)} bytes of report, peak RSS {cli.rss / 1e6:.1f} MB, {elapsed:.1f} s")


# ---------------------------------------------------------------------------- item 5: tar bombs
class Zeros(io.RawIOBase):
    """``size`` zero bytes, produced as read (a bomb is built without holding it)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n


def bundle_archive(
    path: Path, bundle: Path, *, bomb: tuple[str, int] | None = None, bomb_first: bool = False,
    compresslevel: int = 1,
) -> Path:
    """A .tar.gz of ``bundle`` with export.json first, plus ``bomb`` = (member name, size of zeros)
    placed after export.json (or before it with ``bomb_first``)."""
    with tarfile.open(path, "w:gz", compresslevel=compresslevel) as tf:
        def add_bomb() -> None:
            if bomb is not None:
                info = tarfile.TarInfo(bomb[0])
                info.size = bomb[1]
                tf.addfile(info, Zeros(bomb[1]))

        if bomb_first:
            add_bomb()
        tf.add(bundle / "export.json", "export.json")
        for f in sorted(bundle.rglob("*")):
            rel = f.relative_to(bundle).as_posix()
            if f.is_file() and rel != "export.json" and (bomb is None or rel != bomb[0]):
                tf.add(f, rel)
        if not bomb_first:
            add_bomb()
    return path


GIB = 1024**3


@pytest.mark.parametrize(
    ("bomb", "bomb_first", "cause"),
    [
        (("data/a.bin", GIB), False, "1073741824 bytes, but export.json lists 'data/a.bin' with 1 bytes"),
        (("data/zeros.bin", GIB), False, "'data/zeros.bin' (1073741824 bytes) is not listed in export.json"),
        (("data/zeros.bin", 256 * 1024**2), True, "'data/zeros.bin' (268435456 bytes) is not listed"),
    ],
    ids=["oversized-listed-member", "unlisted-member", "unlisted-member-before-export-json"],
)
def test_tar_bomb_is_refused_before_a_byte_is_written(
    registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path, bomb: tuple[str, int], bomb_first: bool, cause: str
) -> None:
    bundle = make_bundle(tmp_path / "bundle", {"data/a.bin": b"a"})
    archive = bundle_archive(tmp_path / "bomb.tar.gz", bundle, bomb=bomb, bomb_first=bomb_first)
    assert archive.stat().st_size < 5 * 1024 * 1024
    start = time.monotonic()
    code, out, err = cli("push", archive, f"{registry.host}/{fresh_repo}:v1")
    elapsed = time.monotonic() - start
    assert code == 2, err
    assert cause in err and "nothing was unpacked" in err, err
    assert cli.rss < RSS_LIMIT, f"peak RSS {cli.rss / 1e6:.1f} MB"
    assert elapsed < 120
    assert tags_of(registry, fresh_repo) is None
    print(f"bomb {bomb}: {archive.stat().st_size} bytes, refused in {elapsed:.1f} s, RSS {cli.rss / 1e6:.1f} MB")


def test_extract_archive_writes_nothing_when_a_member_is_refused(tmp_path: Path) -> None:
    from stella_oci.export.bundle import extract_archive

    bundle = make_bundle(tmp_path / "bundle", {"data/a.bin": b"a", "data/b.bin": b"b"})
    # the bomb comes last, so listed files precede it: still nothing may be written
    archive = bundle_archive(tmp_path / "b.tar.gz", bundle, bomb=("data/zzz.bin", 64 * 1024**2))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(InvalidInputError, match=r"'data/zzz\.bin' .* is not listed"):
        extract_archive(archive, dest)
    assert list(dest.iterdir()) == []
    # the same archive, allowed to leave unlisted files behind, unpacks without the bomb
    left: list[str] = []
    root = extract_archive(archive, dest, allow_unlisted=True, left_behind=left)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "data/a.bin", "data/b.bin", "export.json"
    ]
    assert left == ["data/zzz.bin"]


def test_archive_total_cap_and_extended_header_cap(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stella_oci.export.bundle import extract_archive

    bundle = make_bundle(tmp_path / "bundle", {"data/a.bin": 5000})
    archive = bundle_archive(tmp_path / "ok.tar.gz", bundle)
    dest = tmp_path / "dest"
    dest.mkdir()
    monkeypatch.setenv("STELLA_OCI_MAX_ARCHIVE_BYTES", "4096")
    with pytest.raises(InvalidInputError, match=r"would unpack to .* bytes, more than the 4096 allowed"):
        extract_archive(archive, dest)
    assert list(dest.iterdir()) == []
    monkeypatch.delenv("STELLA_OCI_MAX_ARCHIVE_BYTES")
    # a PAX header tarfile would read whole into memory
    pax = tmp_path / "pax.tar"
    with tarfile.open(pax, "w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("export.json")
        info.pax_headers = {"comment": "x" * (2 * 1024 * 1024)}
        tf.addfile(info, io.BytesIO(b""))
    code, out, err = cli("push", pax, f"oci:{tmp_path / 'layout'}:v1")
    assert code == 2 and "extended header of" in err, err
    assert not (tmp_path / "layout").exists()


# ---------------------------------------------------------------------------- crafted artifacts
def upload_blob(registry: Any, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post(f"{registry.url}/v2/{repo}/blobs/uploads/", timeout=30)
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    if location.startswith("/"):
        location = registry.url + location
    sep = "&" if "?" in location else "?"
    r = requests.put(f"{location}{sep}digest={digest}", data=data, timeout=30,
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    return digest


def craft_artifact(registry: Any, repo: str, tag: str, files: dict[str, bytes], tmp_path: Path) -> str:
    """Store, as a well-formed StellaOps artifact, an export whose contents are ``files``
    (paths a bundle directory could not hold), with an export.json listing them."""
    from stella_oci.export.annotations import EXPORT_MANIFEST_MEDIA_TYPE, compute_annotations
    from stella_oci.export.artifact import EMPTY_CONFIG, layer_descriptor
    from stella_oci.oci.manifest import Manifest, encode

    base = make_bundle(tmp_path / "craft-base", {"x.bin": b"x"})
    doc = read_export_json(base)
    doc["contents"] = [
        {"path": p, "digest": "sha256:" + hashlib.sha256(b).hexdigest(), "bytes": len(b)}
        for p, b in sorted(files.items())
    ]
    export_json = json.dumps(doc, sort_keys=True).encode()
    upload_blob(registry, repo, b"{}")
    layers = [layer_descriptor("export.json", EXPORT_MANIFEST_MEDIA_TYPE,
                               upload_blob(registry, repo, export_json), len(export_json))]
    for p, b in sorted(files.items()):
        layers.append(layer_descriptor(p, "application/octet-stream", upload_blob(registry, repo, b), len(b)))
    annotations = compute_annotations(model_of(doc), provenance_digest=None, provenance_ref=None, user={})
    manifest = Manifest(
        schema_version=2, media_type=OCI_MANIFEST, artifact_type="application/vnd.stellaops.export.v1+json",
        config=EMPTY_CONFIG, layers=layers, annotations=dict(sorted(annotations.items())),
    )
    data, _ = encode(manifest)
    return put_manifest(registry, repo, tag, data)


def test_crafted_artifact_without_conflicts_pulls(registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path) -> None:
    """The crafting helper itself makes artifacts stella-oci accepts: the refusals below are the checks'."""
    craft_artifact(registry, fresh_repo, "ok", {"data/a.bin": b"A", "data/b/c.bin": b"C"}, tmp_path)
    code, out, err = cli("pull", f"{registry.host}/{fresh_repo}:ok", "--output", tmp_path / "out")
    assert code == 0, err
    assert (tmp_path / "out" / "data" / "b" / "c.bin").read_bytes() == b"C"


# ---------------------------------------------------------------------------- item 9: conflicting paths
def test_titles_data_a_and_data_a_b_are_conflicting_paths_exit_3(
    registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path
) -> None:
    digest = craft_artifact(registry, fresh_repo, "conflict", {"data/a": b"file", "data/a/b": b"under"}, tmp_path)
    out_dir = tmp_path / "out"
    for args in (("pull", f"{registry.host}/{fresh_repo}:conflict", "--output", out_dir),
                 ("verify", f"{registry.host}/{fresh_repo}@{digest}")):
        code, out, err = cli(*args)
        assert code == 3, err
        assert "'data/a/b' needs 'data/a' to be a directory" in err and "conflicting paths" in err, err
    assert not out_dir.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_export_json_listing_a_file_and_its_subpath_is_exit_2(
    registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundle", {"data/a/b": b"under"})
    doc = read_export_json(bundle)
    doc["contents"].append({"path": "data/a", "digest": DIGEST, "bytes": 4})
    write_export_json(bundle, doc)
    code, out, err = cli("push", bundle, f"{registry.host}/{fresh_repo}:v1")
    assert code == 2 and "conflicting paths" in err, err
    assert tags_of(registry, fresh_repo) is None


# ---------------------------------------------------------------------------- item 12: case collisions
def test_case_insensitive_collision_in_a_bundle_is_exit_2(
    registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundle", {"data/Readme.bin": b"upper", "data/readme.bin": b"lower"})
    code, out, err = cli("push", bundle, f"{registry.host}/{fresh_repo}:v1")
    assert code == 2, err
    assert "'data/readme.bin' and 'data/Readme.bin'" in err and "differ only in letter case" in err, err
    assert tags_of(registry, fresh_repo) is None


def test_case_insensitive_collision_in_layer_titles_is_exit_3(
    registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path
) -> None:
    digest = craft_artifact(
        registry, fresh_repo, "case", {"data/Readme.bin": b"upper", "data/readme.bin": b"lower"}, tmp_path
    )
    out_dir = tmp_path / "out"
    for args in (("pull", f"{registry.host}/{fresh_repo}:case", "--output", out_dir),
                 ("verify", f"{registry.host}/{fresh_repo}@{digest}")):
        code, out, err = cli(*args)
        assert code == 3, err
        assert "differ only in letter case" in err, err
    assert not out_dir.exists()


def test_case_collision_with_export_json_itself_is_refused(tmp_path: Path) -> None:
    from stella_oci.export.paths import check_path_set

    with pytest.raises(VerificationError, match="differ only in letter case"):
        check_path_set([("export.json", "a"), ("Export.JSON", "b")], error=VerificationError)
    # Unicode normalization: NFC and NFD spellings of one name are one file on macOS
    with pytest.raises(InvalidInputError, match="Unicode normalization"):
        check_path_set([("caf\u00e9", "a"), ("cafe\u0301", "b")])


# ---------------------------------------------------------------------------- item 11: too big for one manifest
def test_bundle_too_big_for_one_manifest_is_refused_before_hashing(
    registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundle", {"data/a.bin": b"a"})
    doc = read_export_json(bundle)
    # 25,000 listed files, none of them on disk: a refusal that names the size was decided
    # from export.json alone, before any file was looked at or hashed
    doc["contents"] = [
        {"path": f"data/file-{i:05d}.json", "digest": DIGEST, "bytes": 1000 + i} for i in range(25_000)
    ]
    write_export_json(bundle, doc)
    code, out, err = cli("push", bundle, f"{registry.host}/{fresh_repo}:v1")
    assert code == 2, err
    assert "25000 files make a manifest of about" in err and "more than the 4194304 bytes (4 MiB)" in err, err
    assert "hint: split the export" in err
    assert "missing" not in err
    assert tags_of(registry, fresh_repo) is None


@pytest.mark.parametrize("name", ["mirror-full", "trivy-db"])
def test_manifest_size_estimate_is_an_upper_bound(name: str, tmp_path: Path) -> None:
    from stella_oci.export.artifact import build_manifest
    from stella_oci.export.bundle import estimate_manifest_bytes, scan_directory

    bundle = scan_directory(copy_example(name, tmp_path / "b"))
    built = build_manifest(bundle, user_annotations={}, provenance_ref=None)
    extras = len(bundle.files) - 1 - len(bundle.doc["contents"])
    estimate = estimate_manifest_bytes(bundle.doc, extras)
    assert len(built.data) <= estimate <= len(built.data) + 20_000


# ---------------------------------------------------------------------------- item 9: nested indexes
def nested_index_layout(root: Path, levels: int) -> str:
    """An OCI layout whose tag 'deep' is ``levels`` image indexes, each holding the next,
    around one image manifest; returns the root digest."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def store(data: bytes) -> tuple[str, int]:
        hexd = hashlib.sha256(data).hexdigest()
        (blobs / hexd).write_bytes(data)
        return "sha256:" + hexd, len(data)

    cfg, cfg_size = store(b"{}")
    layer, layer_size = store(b"payload")
    doc: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": cfg_size},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": layer_size}],
    }
    digest, size = store(json.dumps(doc).encode())
    media = OCI_MANIFEST
    for _ in range(levels):
        idx = {"schemaVersion": 2, "mediaType": OCI_INDEX,
               "manifests": [{"mediaType": media, "digest": digest, "size": size}]}
        digest, size = store(json.dumps(idx).encode())
        media = OCI_INDEX
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": media, "digest": digest, "size": size,
         "annotations": {"org.opencontainers.image.ref.name": "deep"}}]}))
    return digest


def test_thousand_nested_indexes_are_refused_with_the_depth_limit(
    registry: Any, fresh_repo: str, cli: Cli, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    nested_index_layout(layout, 1000)
    code, out, err = cli("copy", f"oci:{layout}:deep", f"{registry.host}/{fresh_repo}:deep")
    assert code == 3, err
    assert "image indexes nested more than 8 levels deep" in err, err
    assert tags_of(registry, fresh_repo) is None
    # within the limit the same graph copies (the limit, not the shape, refused it)
    shallow = tmp_path / "shallow"
    nested_index_layout(shallow, 8)
    code, out, err = cli("copy", f"oci:{shallow}:deep", f"{registry.host}/{fresh_repo}:shallow")
    assert code == 0, err
    assert tags_of(registry, fresh_repo) == ["shallow"]


def test_oci_archive_with_a_huge_pax_header_is_refused_unread(cli: Cli, tmp_path: Path) -> None:
    archive = tmp_path / "pax.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("oci-layout")
        info.pax_headers = {"comment": "x" * (8 * 1024 * 1024)}
        data = b'{"imageLayoutVersion":"1.0.0"}'
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    code, out, err = cli("verify", f"oci-archive:{archive}:v1")
    assert code == 2, err
    assert "an extended header of" in err and "more than 1048576" in err, err


# ---------------------------------------------------------------------------- deep JSON from a hostile registry
class DeepJsonRegistry:
    """A hostile registry: every error body and token answer is JSON nested 30,000 deep
    (inside 64 KiB, the slice the client parses of an error body)."""

    BODY = nested(30_000).encode()

    def __init__(self, bearer: bool) -> None:
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.BODY)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(outer.BODY)

            def do_GET(self) -> None:
                if self.path.startswith("/token"):
                    self._send(200)
                elif bearer and "Authorization" not in self.headers:
                    realm = f"http://127.0.0.1:{outer.port}/token"
                    self._send(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="deep"'})
                else:
                    self._send(404)

            do_HEAD = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("bearer", "code"), [(False, 4), (True, 6)], ids=["error-body", "token-answer"])
def test_deeply_nested_json_from_a_registry_is_not_an_internal_error(
    cli: Cli, tmp_path: Path, bearer: bool, code: int
) -> None:
    server = DeepJsonRegistry(bearer)
    try:
        got, out, err = cli("verify", f"127.0.0.1:{server.port}/repo:v1", "--retries", "0")
    finally:
        server.close()
    assert got == code, err


def test_unlisted_archive_member_allowed_is_left_behind_and_reported(cli: Cli, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", {"data/a.bin": b"a"})
    (bundle / "notes.txt").write_bytes(b"not part of the export")
    archive = bundle_archive(tmp_path / "b.tar.gz", bundle)
    code, out, err = cli("push", archive, f"oci:{tmp_path / 'layout'}:v1")
    assert code == 2 and "'notes.txt' (22 bytes) is not listed" in err, err
    code, out, err = cli("push", archive, f"oci:{tmp_path / 'layout'}:v1", "--allow-unlisted")
    assert code == 0, err
    assert "left behind:     notes.txt" in out, out
