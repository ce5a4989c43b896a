"""The one verifying reader: every blob and manifest stella-oci reads goes through here.

The copy engine, the export.json fetch of pull and verify, the referrers listing and the
signature checks all read with these functions, so the rules hold everywhere:

1. **Size first.** A descriptor that announces more than the reader's limit is refused
   (exit 3) before a request is made or a byte is read: :func:`check_size`.
2. **Verified while it flows.** Blob bytes are hashed and counted as they pass
   (:class:`BlobReader`); more bytes than the descriptor states stop the stream at once.
3. **Checked before the last byte is handed over.** When the count reaches the stated size
   the digest is compared *before* the final chunk is yielded, so a consumer that commits
   only what it was given (a rename, the final ``PUT ?digest=``) never commits wrong bytes,
   even when it stops reading at the stated size. A zero-byte blob is checked without a read.
4. **Manifests by their bytes.** :func:`read_manifest` checks the size from the descriptor
   (at most :data:`~stella_oci.oci.mediatypes.MAX_MANIFEST_BYTES`), then the bytes' length and
   sha256 against the descriptor.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from stella_oci.cancel import Cancellation, Cancelled
from stella_oci.errors import VerificationError, on_side, sided
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import sha256_digest
from stella_oci.oci.manifest import Descriptor
from stella_oci.targets.base import BlobFetcher, ManifestFetcher

CancelledTransfer = Cancelled
"""A transfer stopped because a sibling failed (never the error reported to the user)."""


def check_size(desc: Descriptor, limit: int | None, what: str) -> None:
    """Refuse a descriptor that announces more than ``limit`` bytes, before anything is read."""
    if limit is not None and desc.size > limit:
        raise VerificationError(
            f"{what}: the descriptor announces {desc.size} bytes, more than the {limit} allowed; "
            "refused before download",
            hint="the artifact is not what it claims to be, or was built by another tool",
            details={"digest": desc.digest, "size": desc.size, "limit": limit},
        )


class BlobReader:
    """Verification state of one blob read from ``src``, across re-opens (resumed transfers).

    The hash covers the bytes from offset 0. When a consumer re-opens at an offset the reader
    has not hashed up to, the missing prefix is read again from the source and hashed (not
    handed over). ``cancel`` stops the stream at its next chunk.
    """

    def __init__(
        self,
        src: BlobFetcher,
        desc: Descriptor,
        *,
        what: str | None = None,
        limit: int | None = None,
        cancel: Cancellation | None = None,
        on_bytes: Callable[[int], None] | None = None,
        hint: str | None = None,
    ) -> None:
        self.src = src
        self.desc = desc
        self.what = what or f"blob {desc.short()} from {src.name}"
        self.hint = hint
        check_size(desc, limit, self.what)
        if not desc.digest.startswith("sha256:"):
            raise VerificationError(f"{self.what}: unsupported digest algorithm in {desc.digest!r}")
        self.cancel = cancel
        self.on_bytes = on_bytes
        self._hasher = hashlib.sha256()
        self.count = 0
        self.verified = False

    # --- the checks -------------------------------------------------------------------------
    def _feed(self, chunk: bytes) -> None:
        self.count += len(chunk)
        if self.count > self.desc.size:
            raise VerificationError(
                f"{self.what}: more bytes than the {self.desc.size} the descriptor states", hint=self.hint
            )
        self._hasher.update(chunk)

    def _finish(self) -> None:
        if self.count != self.desc.size:
            raise VerificationError(
                f"{self.what}: got {self.count} bytes, the descriptor states {self.desc.size}", hint=self.hint
            )
        actual = "sha256:" + self._hasher.hexdigest()
        if actual != self.desc.digest:
            raise VerificationError(
                f"{self.what}: content hashes to {actual}, expected {self.desc.digest}", hint=self.hint
            )
        self.verified = True

    def finish_unread(self) -> bool:
        """Complete the check when the consumer read nothing (a zero-byte blob, whose body a
        transport does not open). True when the blob is now verified."""
        if not self.verified and self.count == self.desc.size == 0:
            self._finish()
        return self.verified

    def _restart(self, offset: int) -> None:
        self._hasher = hashlib.sha256()
        self.count = 0
        self.verified = False
        if offset:  # resumed where we have not hashed: hash the prefix again, without handing it over
            with self.src.open_blob(self.desc, 0, self.cancel) as prefix:
                for chunk in prefix:
                    self._feed(chunk[: offset - self.count])
                    if self.count >= offset:
                        break

    # --- reading ----------------------------------------------------------------------------
    def stream(self, chunks: Iterable[bytes], offset: int = 0) -> Iterator[bytes]:
        """Verify ``chunks`` (the blob from ``offset``) while handing them over. Errors are the
        source's (even when the destination drives the iteration)."""
        with on_side("source"):
            yield from self._stream(chunks, offset)

    def _stream(self, chunks: Iterable[bytes], offset: int) -> Iterator[bytes]:
        if offset == 0 or self.count != offset:
            self._restart(offset)
        if self.count == self.desc.size:
            self._finish()
        for chunk in chunks:
            if self.cancel is not None:
                self.cancel.check(self.what)
            if not chunk:
                continue
            self._feed(chunk)
            if self.count == self.desc.size:
                self._finish()  # before the last chunk is handed over
            if self.on_bytes is not None:
                self.on_bytes(len(chunk))
            yield chunk
        self._finish()

    @contextmanager
    def open(self, offset: int) -> Iterator[Iterator[bytes]]:
        """A :data:`~stella_oci.targets.base.BlobOpener`: the verified chunks from ``offset``."""
        if self.cancel is not None:
            self.cancel.check(self.what)
        with sided("source", self.src.open_blob(self.desc, offset, self.cancel)) as chunks:
            yield self.stream(chunks, offset)

    def read(self) -> bytes:
        """The whole blob (callers give a ``limit``: this holds it in memory)."""
        buf = bytearray()
        with self.open(0) as chunks:
            for chunk in chunks:
                buf += chunk
        return bytes(buf)

    def write_to(self, dest: Path, *, mode: int = 0o644) -> None:
        """Write the blob to ``dest`` through a temporary file renamed only once verified."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}-{threading.get_ident()}")
        try:
            with self.open(0) as chunks, open(tmp, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
            os.chmod(tmp, mode)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def read_blob(src: BlobFetcher, desc: Descriptor, *, limit: int, what: str | None = None) -> bytes:
    """A small blob (at most ``limit`` bytes, checked from the descriptor first), verified."""
    return BlobReader(src, desc, what=what, limit=limit).read()


def write_blob(src: BlobFetcher, desc: Descriptor, dest: Path, *, limit: int | None, what: str | None = None) -> None:
    """A blob written to ``dest`` only once verified (size limit checked from the descriptor first)."""
    BlobReader(src, desc, what=what, limit=limit).write_to(dest)


def check_manifest_bytes(data: bytes, desc: Descriptor, what: str) -> bytes:
    """``data`` must be exactly the manifest ``desc`` describes (length, then sha256)."""
    if len(data) != desc.size:
        raise VerificationError(f"{what}: {len(data)} bytes, the descriptor states {desc.size}")
    actual = sha256_digest(data)
    if actual != desc.digest:
        raise VerificationError(f"{what}: content hashes to {actual}, expected {desc.digest}")
    return data


def read_manifest(
    src: ManifestFetcher, desc: Descriptor, *, what: str | None = None, limit: int = mt.MAX_MANIFEST_BYTES
) -> bytes:
    """Manifest (or index) bytes, verified against ``desc``; refused from the descriptor when
    it announces more than ``limit`` bytes."""
    what = what or f"manifest {desc.digest} from {src.name}"
    with on_side("source"):
        check_size(desc, limit, what)
        return check_manifest_bytes(src.fetch_manifest(desc), desc, what)


__all__ = [
    "BlobReader",
    "CancelledTransfer",
    "check_manifest_bytes",
    "check_size",
    "read_blob",
    "read_manifest",
    "write_blob",
]
