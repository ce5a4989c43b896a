"""OCI image layout targets (oci:DIR, oci-archive:FILE) against the real skopeo."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from stella_oci.errors import InvalidInputError, NotFoundError, VerificationError
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import VerifyingStream, iter_file, sha256_digest
from stella_oci.oci.manifest import Descriptor, canonical_json
from stella_oci.targets.archive import OciArchiveTarget
from stella_oci.targets.base import BlobOpener, Target
from stella_oci.targets.layout import OciLayoutTarget

SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed")

ARTIFACT_TYPE = "application/vnd.stellaops.export.v1+json"
SIG_TYPE = "application/vnd.dsse.envelope.v1+json"
LAYER1 = b'{"exportId":"e-1","tenant":"acme"}\n'
LAYER2 = bytes(range(256)) * 5000  # 1.28 MB: more than one 1 MiB chunk


# --- helpers ----------------------------------------------------------------------------
def push_tagged(target: Target, desc: Descriptor, data: bytes, tags: Sequence[str]) -> None:
    """Push a manifest, then tag it (tagging is its own step)."""
    target.push_manifest(desc, data)
    for tag in tags:
        target.tag(desc, tag)


def bytes_opener(data: bytes, chunk: int = 65536) -> BlobOpener:
    @contextlib.contextmanager
    def opener(offset: int) -> Iterator[Iterator[bytes]]:
        yield iter([data[i : i + chunk] for i in range(offset, len(data), chunk)])

    return opener


def file_opener(path: Path) -> BlobOpener:
    @contextlib.contextmanager
    def opener(offset: int) -> Iterator[Iterator[bytes]]:
        yield iter_file(path, offset)

    return opener


def desc_of(data: bytes, media_type: str, title: str | None = None) -> Descriptor:
    return Descriptor(
        media_type=media_type,
        digest=sha256_digest(data),
        size=len(data),
        annotations={mt.ANNOTATION_TITLE: title} if title else None,
    )


def skopeo(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert SKOPEO is not None
    proc = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc


def build_manifest(layers: list[Descriptor], *, subject: Descriptor | None = None,
                   artifact_type: str = ARTIFACT_TYPE, note: str = "1") -> tuple[bytes, Descriptor]:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": mt.OCI_EMPTY, "digest": mt.EMPTY_DIGEST, "size": mt.EMPTY_SIZE},
        "layers": [d.to_dict() for d in layers],
        "annotations": {"io.stellaops.export.id": "e-1", "io.stellaops.export.run": note},
    }
    if subject is not None:
        doc["subject"] = {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size}
    data = canonical_json(doc)
    return data, desc_of(data, mt.OCI_MANIFEST)


def push_artifact(target: Target, tmp_path: Path, tags: tuple[str, ...] = ("v1",),
                  note: str = "1") -> tuple[bytes, Descriptor, list[Descriptor]]:
    """An export-like artifact: empty config, two layers (one pushed from a file), annotations."""
    big = tmp_path / f"layer2-{note}.bin"
    big.write_bytes(LAYER2)
    l1 = desc_of(LAYER1, "application/vnd.stellaops.export.manifest.v1+json", "export.json")
    l2 = desc_of(LAYER2, "application/octet-stream", "data/blob.bin")
    empty = Descriptor(media_type=mt.OCI_EMPTY, digest=mt.EMPTY_DIGEST, size=mt.EMPTY_SIZE)
    assert target.push_blob(empty, bytes_opener(mt.EMPTY_JSON)) in ("uploaded", "exists")
    assert target.push_blob(l1, bytes_opener(LAYER1, chunk=7)) in ("uploaded", "exists")
    assert target.push_blob(l2, file_opener(big)) in ("uploaded", "exists")
    data, desc = build_manifest([l1, l2], note=note)
    push_tagged(target, desc, data, tags)
    return data, desc, [empty, l1, l2]


def read_all(target: Target, desc: Descriptor, offset: int = 0) -> bytes:
    with target.open_blob(desc, offset) as chunks:
        return b"".join(VerifyingStream(chunks, desc.digest, desc.size, desc.short(), offset=offset)
                        if offset == 0 else chunks)


def assert_same_artifact(target: Target, tag: str, data: bytes, blobs: list[Descriptor]) -> None:
    desc = target.resolve(tag)
    assert desc.digest == sha256_digest(data)
    assert desc.size == len(data)
    assert desc.media_type == mt.OCI_MANIFEST
    assert target.fetch_manifest(desc) == data
    expected = {mt.EMPTY_DIGEST: mt.EMPTY_JSON, sha256_digest(LAYER1): LAYER1, sha256_digest(LAYER2): LAYER2}
    for b in blobs:
        assert target.has_blob(b)
        assert read_all(target, b) == expected[b.digest]


# --- directory layout ---------------------------------------------------------------------
def test_layout_files_are_exact_and_deterministic(tmp_path: Path) -> None:
    out = tmp_path / "out"
    target = OciLayoutTarget(out, create=True)
    assert not out.exists()  # made a layout on the first write only
    data, desc, blobs = push_artifact(target, tmp_path)
    assert (out / "oci-layout").read_bytes() == b'{"imageLayoutVersion":"1.0.0"}'
    entry = {"annotations": {mt.ANNOTATION_REF_NAME: "v1"}, "artifactType": ARTIFACT_TYPE,
             "digest": desc.digest, "mediaType": mt.OCI_MANIFEST, "size": desc.size}
    expected_index = canonical_json({"manifests": [entry], "mediaType": mt.OCI_INDEX, "schemaVersion": 2})
    assert (out / "index.json").read_bytes() == expected_index
    names = sorted(p.name for p in (out / "blobs" / "sha256").iterdir())
    assert names == sorted(d.digest.split(":")[1] for d in [*blobs, desc])
    assert (out / "blobs" / "sha256" / desc.digest.split(":")[1]).read_bytes() == data
    # pushing again changes nothing and reports "exists"
    assert target.push_blob(blobs[2], bytes_opener(LAYER2)) == "exists"
    push_tagged(target, desc, data, ["v1"])
    assert (out / "index.json").read_bytes() == expected_index


@needs_skopeo
def test_skopeo_reads_our_layout_and_we_read_skopeos(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    data, _, blobs = push_artifact(OciLayoutTarget(ours, create=True), tmp_path)
    raw = skopeo("inspect", "--raw", f"oci:{ours}:v1").stdout
    assert raw == data
    theirs = tmp_path / "theirs"
    skopeo("copy", f"oci:{ours}:v1", f"oci:{theirs}:v1")
    reader = OciLayoutTarget(theirs, create=False)
    assert_same_artifact(reader, "v1", data, blobs)
    assert reader.tags() == ["v1"]
    # selector "" resolves when the layout holds a single manifest
    assert reader.resolve("").digest == sha256_digest(data)
    # and back: what skopeo wrote, copied by our target into a third layout, skopeo reads again
    third = tmp_path / "third"
    dest = OciLayoutTarget(third, create=True)
    copy_tag(reader, dest, "v1", "again")
    assert skopeo("inspect", "--raw", f"oci:{third}:again").stdout == data


def copy_tag(src: Target, dst: Target, tag: str, new_tag: str) -> None:
    desc = src.resolve(tag)
    data = src.fetch_manifest(desc)
    doc = json.loads(data)
    for child in [doc["config"], *doc["layers"]]:
        d = Descriptor.model_validate(child)

        @contextlib.contextmanager
        def opener(offset: int, d: Descriptor = d) -> Iterator[Iterator[bytes]]:
            with src.open_blob(d, offset) as chunks:
                yield iter(VerifyingStream(chunks, d.digest, d.size, d.short()))

        dst.push_blob(d, opener)
    push_tagged(dst, desc, data, [new_tag])
    dst.commit()


def test_push_blob_refuses_wrong_bytes_and_leaves_nothing(tmp_path: Path) -> None:
    target = OciLayoutTarget(tmp_path / "out", create=True)
    desc = desc_of(LAYER2, "application/octet-stream")
    tampered = bytearray(LAYER2)
    tampered[-1] ^= 1
    with pytest.raises(VerificationError):
        target.push_blob(desc, bytes_opener(bytes(tampered)))
    shadir = tmp_path / "out" / "blobs" / "sha256"
    assert list(shadir.iterdir()) == []  # neither the blob nor a partial file
    assert not target.has_blob(desc)
    seen: list[int] = []
    assert target.push_blob(desc, bytes_opener(LAYER2), seen.append) == "uploaded"
    assert sum(seen) == len(LAYER2) and len(seen) > 1
    assert read_all(target, desc) == LAYER2
    assert read_all(target, desc, offset=1000) == LAYER2[1000:]


def test_push_manifest_checks_bytes_and_moves_tags(tmp_path: Path) -> None:
    out = tmp_path / "out"
    target = OciLayoutTarget(out, create=True)
    data1, desc1, _ = push_artifact(target, tmp_path, tags=("v1", "latest"), note="1")
    with pytest.raises(VerificationError):
        target.push_manifest(desc1, data1 + b" ")
    data2, desc2, _ = push_artifact(target, tmp_path, tags=("latest",), note="2")
    assert target.resolve("latest").digest == desc2.digest
    assert target.resolve("v1").digest == desc1.digest
    assert target.tags() == ["latest", "v1"]
    entries = json.loads((out / "index.json").read_bytes())["manifests"]
    assert [(e["digest"], (e.get("annotations") or {}).get(mt.ANNOTATION_REF_NAME)) for e in entries] == [
        (desc2.digest, "latest"),
        (desc1.digest, "v1"),
    ]
    # moving v1 too leaves manifest 1 listed without a tag (as oras-go does), not lost
    target.tag(desc2, "v1")
    entries = json.loads((out / "index.json").read_bytes())["manifests"]
    assert [(e["digest"], (e.get("annotations") or {}).get(mt.ANNOTATION_REF_NAME)) for e in entries] == [
        (desc2.digest, "latest"),
        (desc2.digest, "v1"),
        (desc1.digest, None),
    ]
    with pytest.raises(InvalidInputError):
        target.tag(desc2, "-bad tag")


def test_resolve_errors(tmp_path: Path) -> None:
    target = OciLayoutTarget(tmp_path / "out", create=True)
    with pytest.raises(NotFoundError):
        target.resolve("")
    _, desc1, blobs = push_artifact(target, tmp_path, note="1")
    _, desc2, _ = push_artifact(target, tmp_path, tags=("v2",), note="2")
    with pytest.raises(InvalidInputError) as ambiguous:
        target.resolve("")
    assert "v1, v2" in str(ambiguous.value)
    with pytest.raises(NotFoundError) as missing:
        target.resolve("v3")
    assert "v3" in str(missing.value) and "v1, v2" in str(missing.value)
    # a digest: the index entry, or a blob whose media type comes from the document
    assert target.resolve(desc1.digest) == Descriptor(
        media_type=mt.OCI_MANIFEST, digest=desc1.digest, size=desc1.size, artifact_type=ARTIFACT_TYPE
    )
    (tmp_path / "out" / "index.json").write_bytes(b'{"schemaVersion":2,"manifests":[]}')
    got = target.resolve(desc2.digest)
    assert (got.media_type, got.digest, got.size) == (mt.OCI_MANIFEST, desc2.digest, desc2.size)
    with pytest.raises(NotFoundError):
        target.resolve("sha256:" + "0" * 64)
    with pytest.raises(InvalidInputError):
        target.resolve("sha256:../../etc/passwd")
    # path safety: a digest is validated before it becomes a file name
    evil = Descriptor.model_construct(media_type="x", digest="sha256:../../../etc/passwd", size=1)
    for call in (lambda: target.has_blob(evil), lambda: target.open_blob(evil).__enter__(),
                 lambda: target.fetch_manifest(evil),
                 lambda: target.push_blob(evil, bytes_opener(b"x"))):
        with pytest.raises(InvalidInputError):
            call()
    assert blobs  # keep the fixture content referenced


def test_layout_open_rules(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        OciLayoutTarget(tmp_path / "missing", create=False)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInputError):
        OciLayoutTarget(plain, create=True)
    with pytest.raises(NotFoundError):
        OciLayoutTarget(plain, create=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "oci-layout").write_text('{"imageLayoutVersion":"9.9.9"}')
    with pytest.raises(InvalidInputError):
        OciLayoutTarget(bad, create=False)
    ro = tmp_path / "ro"
    push_artifact(OciLayoutTarget(ro, create=True), tmp_path)
    with pytest.raises(InvalidInputError):
        OciLayoutTarget(ro, create=False).push_blob(desc_of(b"x", "t"), bytes_opener(b"x"))
    # a blob replaced by a symlink is refused, not followed
    reader = OciLayoutTarget(ro, create=False)
    l1 = desc_of(LAYER1, "t")
    blob = ro / "blobs" / "sha256" / l1.digest.split(":")[1]
    blob.unlink()
    (tmp_path / "secret").write_bytes(LAYER1)
    blob.symlink_to(tmp_path / "secret")
    assert not reader.has_blob(l1)
    with pytest.raises(InvalidInputError), reader.open_blob(l1):
        pass


def test_layout_abort(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    t = OciLayoutTarget(fresh, create=True)
    push_artifact(t, tmp_path)
    t.abort()
    assert not fresh.exists()
    existing = tmp_path / "existing"
    _, desc1, _ = push_artifact(OciLayoutTarget(existing, create=True), tmp_path)
    before = {p.relative_to(existing): p.read_bytes() for p in existing.rglob("*") if p.is_file()}
    t2 = OciLayoutTarget(existing, create=True)
    push_artifact(t2, tmp_path, tags=("v1", "v2"), note="2")
    assert t2.resolve("v1").digest != desc1.digest
    t2.abort()
    after = {p.relative_to(existing): p.read_bytes() for p in existing.rglob("*") if p.is_file()}
    assert after == before


def test_referrers_in_layout(tmp_path: Path) -> None:
    out = tmp_path / "out"
    target = OciLayoutTarget(out, create=True)
    _, subject, _ = push_artifact(target, tmp_path)
    envelope = b'{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}'
    env_desc = desc_of(envelope, SIG_TYPE, "export.json.dsse.json")
    target.push_blob(env_desc, bytes_opener(envelope))
    sig, sig_desc = build_manifest([env_desc], subject=subject, artifact_type=SIG_TYPE, note="sig")
    target.push_manifest(sig_desc, sig)  # no tag: an untagged index entry
    target.push_manifest(sig_desc, sig)  # once per digest
    other, other_desc = build_manifest([env_desc], subject=subject, artifact_type="application/x.other")
    target.push_manifest(other_desc, other)
    entries = json.loads((out / "index.json").read_bytes())["manifests"]
    assert sorted(e["digest"] for e in entries if "annotations" not in e) == sorted(
        [sig_desc.digest, other_desc.digest]
    )
    refs = target.referrers(subject)
    assert [r.digest for r in refs] == sorted([sig_desc.digest, other_desc.digest])
    only_sig = target.referrers(subject, SIG_TYPE)
    assert only_sig == [
        Descriptor(media_type=mt.OCI_MANIFEST, digest=sig_desc.digest, size=sig_desc.size,
                   artifact_type=SIG_TYPE,
                   annotations={"io.stellaops.export.id": "e-1", "io.stellaops.export.run": "sig"})
    ]
    assert target.referrers(sig_desc) == []
    assert target.resolve("v1").digest == subject.digest  # the tag still resolves
    # the same referrers after a round trip through an archive
    archive = tmp_path / "out.tar"
    arch = OciArchiveTarget(archive, create=True)
    for digest in sorted(p.name for p in (out / "blobs" / "sha256").iterdir()):
        path = out / "blobs" / "sha256" / digest
        arch.push_blob(Descriptor(media_type="x", digest="sha256:" + digest, size=path.stat().st_size),
                       file_opener(path))
    push_tagged(arch, subject, target.fetch_manifest(subject), ["v1"])
    arch.push_manifest(sig_desc, sig)
    arch.commit()
    assert OciArchiveTarget(archive, create=False).referrers(subject, SIG_TYPE) == only_sig


# --- archive ---------------------------------------------------------------------------------
@needs_skopeo
def test_skopeo_reads_our_archive_and_we_read_skopeos(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    target = OciArchiveTarget(archive, create=True)
    data, _, blobs = push_artifact(target, tmp_path)
    assert not archive.exists()  # nothing lands before commit
    target.commit()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # staging removed
    assert skopeo("inspect", "--raw", f"oci-archive:{archive}:v1").stdout == data
    assert target.resolve("v1").digest == sha256_digest(data)  # reads the committed archive
    target.close()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    hexes = sorted(d.digest.split(":")[1] for d in [*blobs, target.resolve("v1")])
    assert names == ["oci-layout", "index.json", "blobs", "blobs/sha256",
                     *[f"blobs/sha256/{h}" for h in hexes]]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
        assert m.mode == (0o755 if m.isdir() else 0o644)
    # skopeo writes an archive from a layout; our target reads it
    layout = tmp_path / "layout"
    push_artifact(OciLayoutTarget(layout, create=True), tmp_path)
    theirs = tmp_path / "theirs.tar"
    skopeo("copy", f"oci:{layout}:v1", f"oci-archive:{theirs}:v1")
    reader = OciArchiveTarget(theirs, create=False)
    assert_same_artifact(reader, "v1", data, blobs)
    l2 = blobs[2]
    assert read_all(reader, l2, offset=12345) == LAYER2[12345:]


@needs_skopeo
def test_archive_accumulates_tags(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    t1 = OciArchiveTarget(archive, create=True)
    data1, _, _ = push_artifact(t1, tmp_path, note="1")
    t1.commit()
    t2 = OciArchiveTarget(archive, create=True)
    data2, _, blobs = push_artifact(t2, tmp_path, tags=("v2",), note="2")
    t2.commit()
    assert skopeo("inspect", "--raw", f"oci-archive:{archive}:v1").stdout == data1
    assert skopeo("inspect", "--raw", f"oci-archive:{archive}:v2").stdout == data2
    reader = OciArchiveTarget(archive, create=False)
    assert reader.tags() == ["v1", "v2"]
    assert_same_artifact(reader, "v2", data2, blobs)
    # opened for reading: not a Target (no push, no tag), so nothing can be written through it
    assert not isinstance(reader._reader, Target)


def test_archive_abort_leaves_destination(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    t1 = OciArchiveTarget(archive, create=True)
    push_artifact(t1, tmp_path)
    t1.commit()
    before = archive.read_bytes()
    t2 = OciArchiveTarget(archive, create=True)
    push_artifact(t2, tmp_path, tags=("v1", "v2"), note="2")
    t2.abort()
    assert archive.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar", "layer2-1.bin", "layer2-2.bin"]


def test_archive_is_deterministic(tmp_path: Path) -> None:
    outs = []
    for i, order in enumerate([("v1", "v2"), ("v2", "v1")]):
        archive = tmp_path / f"a{i}.tar"
        target = OciArchiveTarget(archive, create=True)
        push_artifact(target, tmp_path, tags=order)
        target.commit()
        os.utime(archive, (1, 1))
        outs.append(archive.read_bytes())
    assert outs[0] == outs[1]
    assert hashlib.sha256(outs[0]).hexdigest() == hashlib.sha256(outs[1]).hexdigest()


def test_tampered_blob_in_archive_is_caught_while_streaming(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    target = OciArchiveTarget(archive, create=True)
    _, _, blobs = push_artifact(target, tmp_path)
    target.commit()
    l2 = blobs[2]
    with tarfile.open(archive) as tf:
        offset = tf.getmember("blobs/sha256/" + l2.digest.split(":")[1]).offset_data
    with open(archive, "r+b") as fh:
        fh.seek(offset + 500_000)
        byte = fh.read(1)
        fh.seek(offset + 500_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    reader = OciArchiveTarget(archive, create=False)
    with reader.open_blob(l2) as chunks:
        raw = b"".join(chunks)
    assert len(raw) == len(LAYER2) and raw != LAYER2  # the stream itself is unverified
    with pytest.raises(VerificationError), reader.open_blob(l2) as chunks:
        for _ in VerifyingStream(chunks, l2.digest, l2.size, l2.short()):
            pass
    # the intact layer still verifies
    assert read_all(reader, blobs[1]) == LAYER1
    # rewriting a tampered archive refuses to carry the damage forward
    with pytest.raises(VerificationError):
        OciArchiveTarget(archive, create=True).push_manifest(*_tiny_manifest())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def _tiny_manifest() -> tuple[Descriptor, bytes]:
    data, desc = build_manifest([], note="tiny")
    return desc, data


def _tar_with(path: Path, extra: tarfile.TarInfo, payload: bytes | None = None) -> None:
    with tarfile.open(path, "w") as tf:
        for name, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                           ("index.json", b'{"schemaVersion":2,"manifests":[]}')):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        tf.addfile(extra, io.BytesIO(payload) if payload is not None else None)


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = size
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("../evil", size=4),
        _member("blobs/sha256/../../evil", size=4),
        _member("/etc/evil", size=4),
        _member("blobs/sha256/link", tarfile.SYMTYPE, linkname="/etc/passwd"),
        _member("blobs/sha256/hard", tarfile.LNKTYPE, linkname="oci-layout"),
        _member("blobs/sha256/dev", tarfile.CHRTYPE),
        _member("blobs/sha256/fifo", tarfile.FIFOTYPE),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "device", "fifo"],
)
def test_unsafe_archive_members_are_refused(tmp_path: Path, member: tarfile.TarInfo) -> None:
    archive = tmp_path / "bad.tar"
    _tar_with(archive, member, b"evil" if member.size else None)
    for create in (False, True):
        with pytest.raises(InvalidInputError) as err:
            OciArchiveTarget(archive, create=create)
        assert member.name in str(err.value)
    assert not (tmp_path.parent / "evil").exists()


def test_archive_open_rules(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        OciArchiveTarget(tmp_path / "missing.tar", create=False)
    with pytest.raises(InvalidInputError):
        OciArchiveTarget(tmp_path, create=False)
    archive = tmp_path / "a.tar"
    t = OciArchiveTarget(archive, create=True)
    push_artifact(t, tmp_path)
    t.commit()
    import gzip

    gz = tmp_path / "a.tar.gz"
    gz.write_bytes(gzip.compress(archive.read_bytes()))
    with pytest.raises(InvalidInputError) as err:
        OciArchiveTarget(gz, create=False)
    assert "gzip" in str(err.value)
    not_layout = tmp_path / "plain.tar"
    with tarfile.open(not_layout, "w") as tf:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(InvalidInputError) as err:
        OciArchiveTarget(not_layout, create=False)
    assert "oci-layout" in str(err.value)
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(InvalidInputError):
        OciArchiveTarget(garbage, create=False)


def test_concurrent_pushes_of_one_blob(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    target = OciLayoutTarget(tmp_path / "out", create=True)
    desc = desc_of(LAYER2, "application/octet-stream")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: target.push_blob(desc, bytes_opener(LAYER2, chunk=4096)), range(8)))
    assert sorted(results) == ["exists"] * 7 + ["uploaded"]
    assert [p.name for p in (tmp_path / "out" / "blobs" / "sha256").iterdir()] == [desc.digest.split(":")[1]]
    assert read_all(target, desc) == LAYER2


@needs_skopeo
def test_copy_engine_layout_to_archive_with_referrers(tmp_path: Path) -> None:
    from stella_oci.engine import CopyEngine

    layout = tmp_path / "layout"
    src = OciLayoutTarget(layout, create=True)
    data, subject, blobs = push_artifact(src, tmp_path)
    envelope = b'{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}'
    env_desc = desc_of(envelope, SIG_TYPE, "export.json.dsse.json")
    src.push_blob(env_desc, bytes_opener(envelope))
    sig, sig_desc = build_manifest([env_desc], subject=subject, artifact_type=SIG_TYPE, note="sig")
    src.push_manifest(sig_desc, sig)
    archive = tmp_path / "copy.tar"
    dst = OciArchiveTarget(archive, create=True)
    CopyEngine(concurrency=3).copy_graph(src, dst, src.resolve("v1"), tags=["v1"], referrers=True)
    dst.commit()
    assert skopeo("inspect", "--raw", f"oci-archive:{archive}:v1").stdout == data
    reader = OciArchiveTarget(archive, create=False)
    assert_same_artifact(reader, "v1", data, blobs)
    assert [r.digest for r in reader.referrers(subject, SIG_TYPE)] == [sig_desc.digest]
    assert reader.fetch_manifest(reader.resolve(sig_desc.digest)) == sig


def test_archive_made_by_gnu_tar_with_dot_prefix_is_read(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    data, _, blobs = push_artifact(OciLayoutTarget(layout, create=True), tmp_path)
    archive = tmp_path / "gnu.tar"
    subprocess.run(["tar", "-C", str(layout), "-cf", str(archive), "."], check=True)
    with tarfile.open(archive) as tf:
        assert "./index.json" in tf.getnames()
    reader = OciArchiveTarget(archive, create=False)
    assert_same_artifact(reader, "v1", data, blobs)
