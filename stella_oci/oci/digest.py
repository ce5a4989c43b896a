"""Digests computed while bytes flow.

Nothing here reads a blob whole into memory: files are hashed and streamed in 4 MiB reads
(:data:`FILE_CHUNK`: fewer system calls and less per-chunk Python work on large blobs), streams are
wrapped by :class:`VerifyingStream`, which hashes each chunk as it passes and raises
:class:`VerificationError` at the end of the stream, *before* the consumer sees the end,
if the size or digest differ from the descriptor. A consumer that commits only after the
stream ended cleanly (a rename, a final PUT) therefore never commits wrong bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from stella_oci import interrupts
from stella_oci.errors import InvalidInputError, StellaOciError, VerificationError

DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
"""The only digest form stella-oci accepts. Use it with ``fullmatch`` (or :func:`is_digest`):
``match`` with ``$`` would let a trailing newline through."""
CHUNK = 1024 * 1024
FILE_CHUNK = 4 * 1024 * 1024
"""Read size for local files (``file_digest``, ``iter_file``)."""


def is_digest(value: object) -> bool:
    """True for ``sha256:`` and 64 lowercase hex digits, nothing before or after (not even a newline)."""
    return isinstance(value, str) and DIGEST_RE.fullmatch(value) is not None


def check_digest(
    digest: object,
    where: str,
    *,
    error: type[StellaOciError] = InvalidInputError,
    hint: str | None = None,
) -> str:
    """Return ``digest`` if :func:`is_digest`, else raise ``error`` naming ``where``.

    The one digest validator: references, --expect-digest, layout index entries and blob
    names, descriptors (through :class:`stella_oci.oci.manifest.Descriptor`) all use it.
    """
    if not is_digest(digest):
        raise error(
            f"{where}: digest {digest!r} is not of the form sha256:<64 lowercase hex>",
            hint=hint,
        )
    assert isinstance(digest, str)
    return digest


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: str | os.PathLike[str]) -> tuple[str, int]:
    """sha256 digest and size of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        # (a read allocates its size: a small file is read at its size, plus one byte for EOF)
        chunk_size = min(FILE_CHUNK, os.fstat(fh.fileno()).st_size + 1)
        while chunk := fh.read(chunk_size):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def iter_file(path: str | os.PathLike[str], offset: int = 0, chunk_size: int = FILE_CHUNK) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        if offset:
            fh.seek(offset)
        while chunk := fh.read(chunk_size):
            yield chunk


class VerifyingStream:
    """Iterate over ``chunks``, checking that they add up to ``digest`` and ``size``.

    ``what`` names the blob in error messages (e.g. ``"blob sha256:ab.. (data/a.json)"``).
    Raises :class:`VerificationError` as soon as more than ``size`` bytes arrive, and at the
    end if fewer arrived or the digest differs.
    """

    def __init__(self, chunks: Iterable[bytes], digest: str, size: int, what: str, offset: int = 0):
        if not digest.startswith("sha256:"):
            raise VerificationError(f"{what}: unsupported digest algorithm in {digest!r}")
        self._chunks = iter(chunks)
        self.expected = digest
        self.size = size
        self.what = what
        self.hasher = hashlib.sha256()
        self.count = offset

    def feed(self, chunk: bytes) -> None:
        """Count and hash one chunk; refuse more bytes than the descriptor states."""
        self.count += len(chunk)
        if self.count > self.size:
            raise VerificationError(f"{self.what}: more bytes than the {self.size} the descriptor states")
        self.hasher.update(chunk)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if chunk:
                self.feed(chunk)
                yield chunk
        self.finish()

    def finish(self) -> None:
        if self.count != self.size:
            raise VerificationError(f"{self.what}: got {self.count} bytes, the descriptor states {self.size}")
        actual = "sha256:" + self.hasher.hexdigest()
        if actual != self.expected:
            raise VerificationError(f"{self.what}: content hashes to {actual}, expected {self.expected}")


def write_verified(
    chunks: Iterable[bytes], dest: Path, digest: str, size: int, what: str, *, mode: int = 0o644
) -> None:
    """Write a stream to ``dest`` only if it matches ``digest`` and ``size``.

    The bytes go to a temporary file beside ``dest`` (hashed as they are written) which is
    renamed over ``dest`` at the end; on any failure the temporary file is removed and
    ``dest`` is untouched.
    """
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    with interrupts.creating():  # nothing is created once a stopped run removes its files
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = open(tmp, "wb")
    try:
        with out as fh:
            for chunk in VerifyingStream(chunks, digest, size, what):
                fh.write(chunk)
        os.chmod(tmp, mode)
        with interrupts.creating():
            os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
