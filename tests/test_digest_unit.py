"""oci/digest.py without a registry: the one digest validator, file hashing, and the streaming
verifier used by ``fetch`` (scripts/mutation.sh runs this file for oci/digest.py)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.oci.digest import (
    CHUNK,
    DIGEST_RE,
    FILE_CHUNK,
    VerifyingStream,
    check_digest,
    file_digest,
    is_digest,
    iter_file,
    sha256_digest,
    write_verified,
)

GOOD = "sha256:" + "0123456789abcdef" * 4


def test_digest_form() -> None:
    assert is_digest(GOOD) and DIGEST_RE.fullmatch(GOOD)
    for bad in (GOOD + "\n", GOOD.upper(), GOOD[:-1], GOOD + "0", "sha512:" + "0" * 64, "", None, 7, GOOD.replace("sha256", "SHA256")):
        assert not is_digest(bad), bad
    assert check_digest(GOOD, "layer") == GOOD
    with pytest.raises(InvalidInputError) as info:
        check_digest("sha256:xyz", "layers[2]", hint="fix it")
    assert info.value.message == "layers[2]: digest 'sha256:xyz' is not of the form sha256:<64 lowercase hex>"
    assert info.value.hint == "fix it" and info.value.exit_code == 2
    with pytest.raises(VerificationError):
        check_digest(GOOD + "\n", "layer", error=VerificationError)


def test_hashing_files_and_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * (FILE_CHUNK // 256 + 3)  # more than one read
    p = tmp_path / "f"
    p.write_bytes(data)
    assert sha256_digest(data) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert file_digest(p) == (sha256_digest(data), len(data))
    empty = tmp_path / "e"
    empty.write_bytes(b"")
    assert file_digest(empty) == (sha256_digest(b""), 0)
    chunks = list(iter_file(p))
    assert b"".join(chunks) == data and len(chunks[0]) == FILE_CHUNK and len(chunks) == 2
    assert b"".join(iter_file(p, 10)) == data[10:]
    assert [len(c) for c in iter_file(p, len(data) - 5, 2)] == [2, 2, 1]
    assert CHUNK == 1024 * 1024 and FILE_CHUNK == 4 * CHUNK


def test_verifying_stream() -> None:
    data = b"0123456789"
    d = sha256_digest(data)
    assert b"".join(VerifyingStream([b"0123", b"", b"456789"], d, 10, "blob x")) == data
    with pytest.raises(VerificationError) as info:
        list(VerifyingStream([b"0123", b"45678"], d, 10, "blob x"))
    assert info.value.message == "blob x: got 9 bytes, the descriptor states 10"
    with pytest.raises(VerificationError, match="blob x: more bytes than the 10 the descriptor states"):
        list(VerifyingStream([b"0123456789", b"a"], d, 10, "blob x"))
    with pytest.raises(VerificationError, match=f"blob x: content hashes to {sha256_digest(b'0123456780')}, expected {d}"):
        list(VerifyingStream([b"0123456780"], d, 10, "blob x"))
    with pytest.raises(VerificationError, match="unsupported digest algorithm"):
        VerifyingStream([], "sha512:" + "0" * 128, 0, "blob x")
    # resumed at an offset: counting starts there, the hash covers what it is fed
    s = VerifyingStream([b"89"], d, 10, "blob x", offset=8)
    s.hasher.update(data[:8])
    assert list(s) == [b"89"] and s.count == 10
    exact = VerifyingStream([], d, 10, "x")
    exact.feed(data)
    exact.finish()


def test_write_verified(tmp_path: Path) -> None:
    data = b"payload"
    dest = tmp_path / "a" / "b" / "c.bin"
    write_verified([data[:3], data[3:]], dest, sha256_digest(data), len(data), "b.bin", mode=0o600)
    assert dest.read_bytes() == data and dest.stat().st_mode & 0o777 == 0o600
    write_verified([data], tmp_path / "c.bin", sha256_digest(data), len(data), "c.bin")
    assert (tmp_path / "c.bin").stat().st_mode & 0o777 == 0o644
    with pytest.raises(VerificationError):
        write_verified([b"payloaX"], dest, sha256_digest(data), len(data), "b.bin")
    assert dest.read_bytes() == data  # untouched
    assert sorted(p.name for p in dest.parent.iterdir()) == ["c.bin"]  # no partial file left

    def watched() -> Iterator[bytes]:
        yield b"pay"
        names.extend(p.name for p in dest.parent.iterdir())
        yield b"load"

    names: list[str] = []
    write_verified(watched(), dest, sha256_digest(data), len(data), "c.bin")
    assert sorted(names) == [".c.bin.partial-" + str(os.getpid()), "c.bin"]
