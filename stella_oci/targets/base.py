"""The one interface every place an artifact can live implements.

A *target* is a content-addressed store of blobs and manifests with tags: a remote
registry repository, an OCI image layout directory, an OCI layout tar archive, or a
StellaOps bundle directory. The copy engine (:mod:`stella_oci.copy`) moves a manifest graph
from any target to any other through these methods alone.

Contract for implementers:
- ``open_blob`` streams raw bytes, unverified; the engine verifies while they flow.
- ``push_blob`` must not make a blob visible until all of it arrived and it hashes to
  ``desc.digest`` with ``desc.size`` bytes (temporary file + rename, or the registry's own
  check of the final ``PUT ?digest=``).
- ``fetch_manifest`` returns the bytes exactly as stored; ``push_manifest`` stores exactly
  the bytes given.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager

from stella_oci.oci.manifest import Descriptor

BlobOpener = Callable[[int], AbstractContextManager[Iterator[bytes]]]
ProgressFn = Callable[[int], None]


class Target(ABC):
    """Abstract store of manifests and blobs."""

    #: Human-readable name used in messages, e.g. ``localhost:5000/exports`` or ``oci:./out``.
    name: str = "target"

    # --- reading -----------------------------------------------------------------
    @abstractmethod
    def resolve(self, selector: str) -> Descriptor:
        """Descriptor of the manifest a tag or digest names. NotFoundError if absent."""

    @abstractmethod
    def fetch_manifest(self, desc: Descriptor) -> bytes:
        """The manifest (or index) bytes as stored. Callers check them against ``desc``."""

    @abstractmethod
    def open_blob(self, desc: Descriptor, offset: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        """Stream a blob's bytes from ``offset``."""

    @abstractmethod
    def has_blob(self, desc: Descriptor) -> bool:
        """True when the blob is already stored (used to skip transfers)."""

    def has_manifest(self, desc: Descriptor) -> bool:
        """True when the manifest is stored. Targets store a manifest only after everything it
        points at, so a stored manifest means its whole graph is there. Default: as a blob."""
        return self.has_blob(desc)

    def referrers(self, subject: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``subject`` (OCI 1.1 referrers). Default: none."""
        return []

    # --- writing -----------------------------------------------------------------
    @abstractmethod
    def push_blob(self, desc: Descriptor, opener: BlobOpener, progress: ProgressFn | None = None) -> str:
        """Store a blob; return "exists", "mounted" or "uploaded"."""

    @abstractmethod
    def push_manifest(self, desc: Descriptor, data: bytes, tags: Sequence[str] = ()) -> None:
        """Store manifest bytes under their digest and under each of ``tags``."""

    def commit(self) -> None:  # noqa: B027 - optional hook
        """Finish writing (e.g. close an archive). Called once after a successful copy."""

    def abort(self) -> None:  # noqa: B027 - optional hook
        """Discard what an unsuccessful copy wrote, where the target can."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and file handles."""
