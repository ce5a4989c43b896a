"""A repository in a remote registry, as a :class:`~stella_oci.targets.base.Target`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager

from stella_oci.cancel import Cancellation
from stella_oci.errors import NotFoundError, VerificationError
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import is_digest
from stella_oci.oci.manifest import Descriptor, Index, encode, parse_index, parse_manifest
from stella_oci.oci.reference import Reference
from stella_oci.targets.base import BlobOpener, ProgressFn, PushOutcome
from stella_oci.transport.client import ManifestResponse, RegistryClient

ACCEPT = (mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST_V2, mt.DOCKER_MANIFEST_LIST)
SMALL_BLOB_NO_PROBE = 1024 * 1024
"""A push uploads blobs below 1 MiB without a HEAD first (:attr:`RegistryTarget.probe_below`):
at 40 ms RTT and 10-100 MB/s the bytes of such a blob cost less than the round trip a probe
takes, so the probe pays only for larger blobs, and for the shared empty config."""


class RegistryTarget:
    """Reads and writes (a :class:`~stella_oci.targets.base.Storage`): resolve, fetch, list
    referrers, check, push, tag."""

    def __init__(self, client: RegistryClient, ref: Reference, *, mount_from: Sequence[str] = ()) -> None:
        self.probe_below: int = 0
        """Blobs smaller than this are uploaded without the HEAD existence probe (except the
        empty config every artifact shares): a push of a bundle sets
        :data:`SMALL_BLOB_NO_PROBE`, since its manifest was found absent first and its files are
        new as a rule; a probe there costs a round trip per blob to save one only when the blob
        is there (docs/transport.md, "Round trips")."""
        self.client = client
        self.ref = ref
        self.repo = ref.repository
        self.name = ref.base()
        self.mount_from = tuple(m for m in mount_from if m != self.repo)
        self.last_response: ManifestResponse | None = None
        self._manifest_cache: dict[str, bytes] = {}
        self._known_blobs: set[str] = set()
        """Blobs this target uploaded or found (``push_blob``): not sent or probed twice."""
        self._pushed: dict[str, bytes] = {}
        """Manifests this target pushed, by digest: ``tag`` PUTs them again under the tag."""

    # --- reading ------------------------------------------------------------------
    def get(self, selector: str) -> ManifestResponse:
        """GET the manifest a tag or digest names, keeping the response headers."""
        resp = self.client.get_manifest(self.repo, selector, ACCEPT)
        self.last_response = resp
        return resp

    def resolve(self, selector: str) -> Descriptor:
        resp = self.get(selector)
        from stella_oci.oci.digest import sha256_digest

        digest = sha256_digest(resp.data)
        if is_digest(selector) and digest != selector:
            raise VerificationError(
                f"{self.name}@{selector}: the registry sent a manifest that hashes to {digest}"
            )
        if resp.digest_header and resp.digest_header != digest:
            raise VerificationError(
                f"{self.name}:{selector}: manifest hashes to {digest}, but the registry's "
                f"Docker-Content-Digest says {resp.digest_header}"
            )
        self._manifest_cache[digest] = resp.data
        media = resp.media_type.split(";")[0].strip() or mt.OCI_MANIFEST
        return Descriptor(media_type=media, digest=digest, size=len(resp.data))

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        cached = self._manifest_cache.pop(desc.digest, None)
        if cached is not None:
            return cached
        resp = self.client.get_manifest(self.repo, desc.digest, ACCEPT)
        if resp.digest_header and resp.digest_header != desc.digest:
            raise VerificationError(
                f"{self.name}@{desc.digest}: the registry's Docker-Content-Digest says {resp.digest_header}"
            )
        return resp.data

    def open_blob(
        self, desc: Descriptor, offset: int = 0, cancel: Cancellation | None = None
    ) -> AbstractContextManager[Iterator[bytes]]:
        return self.client.open_blob(self.repo, desc.digest, offset, cancel=cancel)

    def has_blob(self, desc: Descriptor) -> bool:
        present = self.client.blob_size(self.repo, desc.digest) is not None
        if not present:
            self._known_blobs.discard(desc.digest)  # (gone: push_blob must upload it again)
        return present

    def has_manifest(self, desc: Descriptor) -> bool:
        """HEAD by digest. A registry accepts a manifest only once its blobs are there.
        (Only destinations are asked: the token is asked for ``pull,push``, so that one
        token serves the whole push.)"""
        try:
            self.client.head_manifest(self.repo, desc.digest, ACCEPT, push=True)
        except NotFoundError:
            return False
        return True

    # --- writing ------------------------------------------------------------------
    def push_blob(self, desc: Descriptor, opener: BlobOpener, progress: ProgressFn | None = None) -> PushOutcome:
        if desc.digest in self._known_blobs:
            return PushOutcome.EXISTS  # this target put it there (a Trivy push's referrer shares layers)
        probe = desc.size >= self.probe_below or desc.digest == mt.EMPTY_DIGEST
        how = PushOutcome(
            self.client.upload_blob(
                self.repo, desc.digest, desc.size, opener, mount_from=self.mount_from, on_bytes=progress, probe=probe
            )
        )
        self._known_blobs.add(desc.digest)
        return how

    def _put(self, reference: str, desc: Descriptor, data: bytes, *, first_store: bool = False) -> bool:
        """PUT ``data`` under ``reference``; True when the registry acknowledged a subject.

        The registry's ``Docker-Content-Digest`` must be ``desc.digest``. When a tag PUT is
        the manifest's ``first_store``, a registry that sends none is asked with a HEAD by
        digest whether it holds the manifest as ``desc.digest`` (by digest, the registry
        itself checks the bytes against the URL)."""
        result = self.client.put_manifest(self.repo, reference, data, desc.media_type)
        where = f"{self.name}:{reference}" if reference != desc.digest else f"{self.name}@{reference}"
        if result.digest_header and result.digest_header != desc.digest:
            raise VerificationError(
                f"{where}: the registry stored the manifest as {result.digest_header}, expected {desc.digest}"
            )
        if first_store and not result.digest_header and reference != desc.digest and not self.has_manifest(desc):
            raise VerificationError(
                f"{where}: the registry took the manifest under the tag but does not hold it as "
                f"{desc.digest} (and sent no Docker-Content-Digest)",
                hint="the registry changed the manifest bytes; report it to its operator",
            )
        return bool(result.subject_header)

    def push_manifest(self, desc: Descriptor, data: bytes) -> None:
        """PUT the manifest by digest. A manifest with a ``subject`` that the registry did not
        acknowledge with ``OCI-Subject`` is added to the referrers fallback tag."""
        self._store(desc.digest, desc, data)

    def push_manifest_tagged(self, desc: Descriptor, data: bytes, tag: str) -> None:
        """PUT the manifest under ``tag``: stored and tagged in one request (the OCI
        distribution spec's ``PUT /v2/<name>/manifests/<tag>``), one round trip less than a
        PUT by digest and one by tag. The digest the registry answers must be ours."""
        self._store(tag, desc, data)

    def _store(self, reference: str, desc: Descriptor, data: bytes) -> None:
        acknowledged = self._put(reference, desc, data, first_store=True)
        self._pushed[desc.digest] = data
        if desc.media_type == mt.OCI_MANIFEST and b'"subject"' in data:
            manifest = parse_manifest(data)
            if manifest.subject is not None and not acknowledged:
                self.add_to_fallback_index(manifest.subject, self.referrer_descriptor(desc, data))

    def remember_manifest(self, desc: Descriptor, data: bytes) -> None:
        """The engine found ``desc`` here and has its bytes: ``tag`` need not GET them (a
        re-push is then one HEAD and one PUT per tag)."""
        from stella_oci.targets.verified import check_manifest_bytes

        self._pushed[desc.digest] = check_manifest_bytes(data, desc, f"{self.name}@{desc.digest}")

    def tag(self, desc: Descriptor, tag: str) -> None:
        """PUT the manifest again under ``tag`` (the bytes pushed before, or fetched by digest)."""
        data = self._pushed.get(desc.digest)
        if data is None:
            from stella_oci.targets.verified import check_manifest_bytes

            resp = self.client.get_manifest(self.repo, desc.digest, ACCEPT)
            data = check_manifest_bytes(resp.data, desc, f"{self.name}@{desc.digest}")
        self._put(tag, desc, data)

    def commit(self) -> None:
        """A registry makes each PUT visible at once: nothing left to do."""

    def abort(self) -> None:
        """A registry cannot take back what it stored; blobs without a manifest are garbage-collected."""

    # --- referrers ----------------------------------------------------------------
    def referrers(self, subject: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        """Referrers API when the registry has it, else the ``sha256-<hex>`` fallback tag."""
        data = self.client.get_referrers(self.repo, subject.digest, artifact_type)
        if data is None:
            index = self.fallback_index(subject)
            found = list(index.manifests) if index else []
        else:
            found = list(parse_index(data, f"{self.name} referrers of {subject.digest}").manifests)
        if artifact_type:
            found = [d for d in found if d.artifact_type == artifact_type]
        return found

    @staticmethod
    def fallback_tag(subject: Descriptor) -> str:
        algo, hexd = subject.digest.split(":", 1)
        return f"{algo}-{hexd}"

    def fallback_index(self, subject: Descriptor) -> Index | None:
        try:
            resp = self.client.get_manifest(self.repo, self.fallback_tag(subject), (mt.OCI_INDEX,))
        except NotFoundError:
            return None
        return parse_index(resp.data, f"{self.name}:{self.fallback_tag(subject)}")

    def add_to_fallback_index(self, subject: Descriptor, referrer: Descriptor) -> None:
        """Add ``referrer`` to the referrers tag index, keeping entries other clients added."""
        index = self.fallback_index(subject) or Index(schema_version=2, media_type=mt.OCI_INDEX, manifests=[])
        entries = [d for d in index.manifests if d.digest != referrer.digest]
        entries.append(referrer)
        new = Index(schema_version=2, media_type=mt.OCI_INDEX, manifests=entries)
        data, _ = encode(new)
        self.client.put_manifest(self.repo, self.fallback_tag(subject), data, mt.OCI_INDEX)

    def referrer_descriptor(self, desc: Descriptor, data: bytes) -> Descriptor:
        m = parse_manifest(data)
        return Descriptor(
            media_type=desc.media_type,
            digest=desc.digest,
            size=desc.size,
            artifact_type=m.artifact_type or m.config.media_type,
            annotations=m.annotations,
        )

    def close(self) -> None:
        self.client.close()
