"""Targets by capability: small protocols, composed the way oras-go v2 composes its interfaces.

A *target* is a content-addressed store of blobs and manifests: a remote registry repository,
an OCI image layout directory, an OCI layout tar archive, a StellaOps bundle directory being
pushed (read-only) or pulled (write-only). Each capability is one small protocol, as in
oras-go's ``content.Fetcher`` / ``content.Pusher`` / ``content.Resolver`` / ``content.Tagger``
/ ``registry.ReferrerLister``; a class implements the capabilities it really has and nothing
else, so no method exists only to raise:

=====================  ==================================  =========================================
protocol               methods                             oras-go v2
=====================  ==================================  =========================================
:class:`Resolver`      ``resolve(selector)``               ``content.Resolver``
:class:`BlobFetcher`   ``open_blob(desc, offset)``         ``content.Fetcher`` (blobs)
:class:`ManifestFetcher` ``fetch_manifest(desc)``          ``content.Fetcher`` (manifests)
:class:`ReferrerLister` ``referrers(subject, type)``       ``registry.ReferrerLister``
:class:`BlobChecker`   ``has_blob(desc)``                  ``content.ReadOnlyStorage.Exists``
:class:`ManifestChecker` ``has_manifest(desc)``            ``content.ReadOnlyStorage.Exists``
:class:`BlobPusher`    ``push_blob(desc, opener)``         ``content.Pusher`` (blobs)
:class:`ManifestPusher` ``push_manifest(desc, data)``      ``content.Pusher`` (manifests)
:class:`Tagger`        ``tag(desc, tag)``                  ``content.Tagger``
:class:`Closer`        ``close()``                         (``io.Closer``)
:class:`Transaction`   ``commit()``, ``abort()``           (stella-oci: all-or-nothing writes)
=====================  ==================================  =========================================

:class:`ReadOnlyTarget` (where a copy reads) and :class:`Target` (where a copy writes) are
composed from them; :func:`stella_oci.engine.CopyEngine.copy_graph` takes
``(src: ReadOnlyTarget, dst: Target)``. Tagging is its own step after a manifest is pushed.

Contract for implementers:

- ``open_blob`` streams raw bytes, unverified: callers read through
  :mod:`stella_oci.targets.verified`, which checks size limits from the descriptor before the
  first byte and digest and size while the bytes flow.
- ``push_blob`` must not make a blob visible until all of it arrived and it hashes to
  ``desc.digest`` with ``desc.size`` bytes (temporary file + rename, or the registry's own
  check of the final ``PUT ?digest=``). It returns a :class:`PushOutcome`.
- ``fetch_manifest`` returns the bytes exactly as stored; ``push_manifest`` stores exactly the
  bytes given, by digest (no tag); ``tag`` points a tag at a manifest already pushed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from stella_oci.cancel import Cancellation
from stella_oci.oci.manifest import Descriptor

BlobOpener = Callable[[int], AbstractContextManager[Iterator[bytes]]]
"""``opener(offset)``: a context manager yielding the blob's chunks from ``offset``."""
ProgressFn = Callable[[int], None]


class PushOutcome(str, enum.Enum):
    """How a blob got to the destination."""

    EXISTS = "exists"
    """The destination had it already (nothing sent)."""
    MOUNTED = "mounted"
    """The registry linked it from another repository (nothing sent)."""
    UPLOADED = "uploaded"
    """Its bytes were sent (and verified while they flowed)."""

    def __str__(self) -> str:
        return self.value


class Named(Protocol):
    #: Human-readable name used in messages, e.g. ``localhost:5000/exports`` or ``oci:./out``.
    name: str


# --- reading ---------------------------------------------------------------------------------
class Resolver(Named, Protocol):
    def resolve(self, selector: str) -> Descriptor:
        """Descriptor of the manifest a tag or digest names. NotFoundError if absent."""
        ...


class BlobFetcher(Named, Protocol):
    def open_blob(
        self, desc: Descriptor, offset: int = 0, cancel: Cancellation | None = None
    ) -> AbstractContextManager[Iterator[bytes]]:
        """Stream a blob's raw bytes from ``offset`` (unverified: read through targets.verified).

        A source whose reads can block (the network) stops a blocked read when ``cancel`` is
        set (:meth:`~stella_oci.cancel.Cancellation.on_cancel`); local files never block and
        may ignore it (the reader checks it between chunks)."""
        ...


class ManifestFetcher(Named, Protocol):
    def fetch_manifest(self, desc: Descriptor) -> bytes:
        """The manifest (or index) bytes as stored (unverified: read through targets.verified)."""
        ...


class ReferrerLister(Named, Protocol):
    def referrers(self, subject: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``subject`` (OCI 1.1 referrers)."""
        ...


class BlobChecker(Protocol):
    def has_blob(self, desc: Descriptor) -> bool:
        """True when the blob is already stored (a copy skips it)."""
        ...


class ManifestChecker(Protocol):
    def has_manifest(self, desc: Descriptor) -> bool:
        """True when the manifest is stored. Targets store a manifest only after everything
        it points at, so a stored manifest means its whole graph is there."""
        ...


# --- writing ---------------------------------------------------------------------------------
class BlobPusher(Named, Protocol):
    def push_blob(self, desc: Descriptor, opener: BlobOpener, progress: ProgressFn | None = None) -> PushOutcome:
        """Store a blob (visible only once whole and matching ``desc``)."""
        ...


class ManifestPusher(Named, Protocol):
    def push_manifest(self, desc: Descriptor, data: bytes) -> None:
        """Store manifest bytes under their digest (no tag)."""
        ...


class Tagger(Protocol):
    def tag(self, desc: Descriptor, tag: str) -> None:
        """Point ``tag`` at the manifest ``desc`` (pushed before)."""
        ...


class Closer(Protocol):
    def close(self) -> None:
        """Release connections and file handles."""
        ...


class Transaction(Protocol):
    def commit(self) -> None:
        """Finish writing (e.g. write an archive, rename a directory into place)."""
        ...

    def abort(self) -> None:
        """Discard what an unsuccessful copy wrote, where the target can."""
        ...


# --- composed --------------------------------------------------------------------------------
@runtime_checkable
class ReadOnlyTarget(Resolver, BlobFetcher, ManifestFetcher, ReferrerLister, Closer, Protocol):
    """Where a copy reads: resolve, fetch manifests and blobs, list referrers."""


@runtime_checkable
class Target(
    BlobChecker, ManifestChecker, BlobPusher, ManifestPusher, Tagger, Transaction, Closer, Protocol
):
    """Where a copy writes: check, push blobs and manifests, tag, commit or abort."""


@runtime_checkable
class ManifestMemory(Protocol):
    """A destination told the bytes of a manifest it holds already (the copy engine found it
    there), so that ``tag`` puts them under the tag without fetching them first."""

    def remember_manifest(self, desc: Descriptor, data: bytes) -> None:
        """``data`` are ``desc``'s bytes (checked against its digest)."""
        ...


@runtime_checkable
class TaggedManifestPusher(Protocol):
    """A destination that stores a manifest and points a tag at it in one step (a registry:
    ``PUT /v2/<repo>/manifests/<tag>``, which the OCI distribution spec allows), instead of
    ``push_manifest`` by digest and then ``tag``: one round trip less per push."""

    def push_manifest_tagged(self, desc: Descriptor, data: bytes, tag: str) -> None:
        """Store exactly ``data`` and point ``tag`` at it; raise VerificationError (exit 3)
        when the destination says it stored them under another digest than ``desc.digest``."""
        ...


@runtime_checkable
class UncheckedSource(Protocol):
    """A source whose blobs nothing has hashed yet (a bundle being pushed: export.json states
    the digests, the files were not read before the copy). The copy engine verifies each blob
    while it streams, names it with ``blob_what`` in messages, and calls ``confirm`` for every
    blob before any manifest naming it is pushed: a blob the destination did not read (it had
    it, or mounted it) is hashed there, so a wrong file never gets a manifest and each byte is
    hashed once."""

    def blob_what(self, desc: Descriptor) -> tuple[str, str] | None:
        """How messages name the blob (e.g. its file and export.json entry) and the hint they
        give; None: the default."""
        ...

    def confirm(self, desc: Descriptor, *, streamed: bool) -> None:
        """The blob is at the destination. ``streamed``: its bytes were verified on the way;
        else (the destination had it) hash them now, unless done before; raise
        VerificationError (exit 3) when they differ."""
        ...


@runtime_checkable
class Storage(ReadOnlyTarget, Target, Protocol):
    """A store that is both (a registry repository, an OCI layout opened for writing)."""


__all__ = [
    "BlobChecker",
    "BlobFetcher",
    "BlobOpener",
    "BlobPusher",
    "Closer",
    "ManifestChecker",
    "ManifestFetcher",
    "ManifestMemory",
    "ManifestPusher",
    "ProgressFn",
    "PushOutcome",
    "ReadOnlyTarget",
    "ReferrerLister",
    "Resolver",
    "Storage",
    "TaggedManifestPusher",
    "Tagger",
    "Target",
    "Transaction",
    "UncheckedSource",
]
