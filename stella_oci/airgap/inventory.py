"""The inventory and checksums a ``stella-oci save`` archive carries next to its OCI layout.

``stella-oci/inventory.json``: which exports the archive holds (source repository, tag, digest,
sizes, profile, tenant, referrers), its ``mirrorGeneration`` and who made it.
``stella-oci/checksums.sha256``: ``sha256sum`` lines over every other member (the layout's
``oci-layout``, ``index.json`` and blobs, and the inventory), so ``load`` can check the whole
archive before it writes anything (Zarf's checksums file, Hauler's store manifest).
``stella-oci/inventory.dsse.json`` (``save --sign-key``): a DSSE envelope whose payload is the
inventory's exact bytes; ``load --trust-root`` verifies it before anything is written. The
inventory names every export's manifest digest and every manifest names its blobs by digest,
so the signature binds everything that is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError
from pydantic.alias_generators import to_camel

from stella_oci import interrupts
from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.signing.sign import Signer
from stella_oci.signing.trust import TrustRoot
from stella_oci.targets.archive import _tarinfo, layout_members, safe_member_name

INVENTORY_MEMBER = "stella-oci/inventory.json"
CHECKSUMS_MEMBER = "stella-oci/checksums.sha256"
SIGNATURE_MEMBER = "stella-oci/inventory.dsse.json"
#: payloadType of the DSSE envelope over an archive inventory.
PAYLOAD_TYPE_INVENTORY = "application/vnd.stellaops.archive-inventory.v1+json"
INVENTORY_KIND = "stella-oci/archive-inventory"
MAX_INVENTORY_BYTES = 16 * 1024 * 1024
MAX_CHECKSUMS_BYTES = 64 * 1024 * 1024
CHUNK = 1024 * 1024

_MODEL = ConfigDict(alias_generator=to_camel, populate_by_name=True, use_attribute_docstrings=True)


class InventoryExport(BaseModel):
    model_config = _MODEL

    source: str
    """``host/repository`` the export was saved from."""
    repository: str
    """Its repository path: ``load`` writes it to DEST/<repository>."""
    tag: str | None = None
    digest: str
    media_type: str
    size: int
    """Manifest plus the blobs it lists, in bytes."""
    artifact_type: str | None = None
    created: str | None = None
    profile: str | None = None
    tenant: str | None = None
    referrers: list[str] = []
    """Digests of the referrer manifests (signatures, provenance) saved with it."""
    cosign_tags: dict[str, str] = {}
    """cosign's ``sha256-<hex>.sig/.att/.sbom`` tags saved with it (tag -> manifest digest)."""


class Inventory(BaseModel):
    model_config = _MODEL

    kind: str = INVENTORY_KIND
    schema_version: int = 1
    mirror_generation: int
    """``load`` refuses an archive whose generation is not above the last one applied for its
    origin at the destination (:mod:`stella_oci.airgap.generations`)."""
    origin: str | None = None
    """The source the generation counts for: the registries the exports were saved from
    (sorted, comma-separated). Archives written before it existed: derived the same way."""
    created_by: str
    exports: list[InventoryExport]
    omitted: dict[str, str] = {}
    """An increment (``save --since``): each blob left out, and the archive (or have-list)
    that carried it; ``load`` needs them at the destination already."""

    _digest: str = PrivateAttr(default="")

    @property
    def source_id(self) -> str:
        """``origin``, or for an archive without one, derived from its exports' sources."""
        return self.origin or derive_origin(e.source for e in self.exports)

    @property
    def digest(self) -> str:
        """``sha256:`` of inventory.json as carried (set by :func:`check_archive`): the archive's
        identity for the ledger (a resumed load is the same archive again)."""
        return self._digest


def derive_origin(sources: Iterable[str]) -> str:
    """The registry hosts of ``host/repository`` sources, sorted and comma-separated."""
    return ",".join(sorted({s.split("/", 1)[0] for s in sources})) or "-"


def previous_generation(path: Path) -> int | None:
    """The ``mirrorGeneration`` of the save archive ``path`` (``save --since``), or None when it
    is not one (a have-list). Reads the inventory only; the caller checks the archive whole."""
    try:
        members = _members(path)
        info = members.get(INVENTORY_MEMBER)
        if info is None:
            return None
        return Inventory.model_validate_json(_read(path, info, MAX_INVENTORY_BYTES)).mirror_generation
    except (InvalidInputError, ValidationError, OSError):
        return None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def checksums_text(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"{hexdigest}  {name}\n" for name, hexdigest in pairs)


def write_archive(layout_dir: Path, inventory: Inventory, out: Path, signer: Signer | None = None) -> int:
    """Write ``layout_dir`` plus the inventory (signed by ``signer`` when given) and checksums
    as a deterministic tar at ``out`` (temporary file, fsync, rename). Returns the number of blobs."""
    inv_bytes = (
        json.dumps(inventory.model_dump(by_alias=True, exclude_none=True), indent=2, sort_keys=True) + "\n"
    ).encode()
    extra = [(INVENTORY_MEMBER, inv_bytes)]
    if signer is not None:
        extra.append((SIGNATURE_MEMBER, signer.envelope(PAYLOAD_TYPE_INVENTORY, inv_bytes)))
    members = layout_members(layout_dir)
    sums: list[tuple[str, str]] = []
    for name, path in members:
        if path.is_file():
            sums.append((name, _sha256_file(path)))
    sums.extend((name, hashlib.sha256(data).hexdigest()) for name, data in extra)
    sums_bytes = checksums_text(sums).encode()
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    token = interrupts.track(tmp)
    try:
        with open(tmp, "wb") as fh:
            with tarfile.TarFile(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tf:
                for name, path in members:
                    if path.is_dir():
                        tf.addfile(_tarinfo(name, is_dir=True))
                        continue
                    with open(path, "rb") as src:
                        tf.addfile(_tarinfo(name, size=os.fstat(src.fileno()).st_size), src)
                tf.addfile(_tarinfo("stella-oci", is_dir=True))
                for name, data in (*extra, (CHECKSUMS_MEMBER, sums_bytes)):
                    import io

                    tf.addfile(_tarinfo(name, size=len(data)), io.BytesIO(data))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        interrupts.untrack(token)
    return sum(1 for name, _ in sums if name.startswith("blobs/"))


def _members(path: Path) -> dict[str, tarfile.TarInfo]:
    found: dict[str, tarfile.TarInfo] = {}
    try:
        with tarfile.open(path, mode="r:") as tf:
            for info in tf:
                name = safe_member_name(info, str(path))
                if name is None or info.isdir():
                    continue
                if name in found:
                    raise InvalidInputError(f"{path}: member {name!r} appears more than once")
                found[name] = info
    except tarfile.TarError as exc:
        raise InvalidInputError(f"{path}: not a readable tar archive ({exc})") from None
    return found


def _read(path: Path, info: tarfile.TarInfo, limit: int) -> bytes:
    if info.size > limit:
        raise InvalidInputError(f"{path}: member {info.name} is larger than {limit} bytes")
    with open(path, "rb") as fh:
        fh.seek(info.offset_data)
        data = fh.read(info.size)
    if len(data) != info.size:
        raise InvalidInputError(f"{path}: member {info.name} is truncated")
    return data


def check_archive(path: Path) -> Inventory:
    """Check every member of a ``save`` archive against its checksums file (nothing missing,
    nothing changed, nothing extra) and return its inventory. Raises before anything is written."""
    members = _members(path)
    if CHECKSUMS_MEMBER not in members or INVENTORY_MEMBER not in members:
        raise InvalidInputError(
            f"{path}: no {INVENTORY_MEMBER} / {CHECKSUMS_MEMBER}; this archive was not written by "
            "stella-oci save",
            hint="load reads archives from `stella-oci save`; copy a single oci-archive with stella-oci copy",
        )
    lines = (
        _read(path, members[CHECKSUMS_MEMBER], MAX_CHECKSUMS_BYTES).decode("utf-8", "replace").splitlines()
    )
    listed: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        hexdigest, sep, name = line.partition("  ")
        if not sep or len(hexdigest) != 64:
            raise VerificationError(f"{path}: {CHECKSUMS_MEMBER} line {n} is not '<sha256>  <name>'")
        listed[name] = hexdigest
    for name in sorted(set(members) - set(listed) - {CHECKSUMS_MEMBER}):
        raise VerificationError(f"{path}: member {name} is not listed in {CHECKSUMS_MEMBER}")
    with open(path, "rb") as fh:
        for name, want in sorted(listed.items()):
            info = members.get(name)
            if info is None:
                raise VerificationError(f"{path}: member {name} listed in {CHECKSUMS_MEMBER} is missing")
            fh.seek(info.offset_data)
            h, left = hashlib.sha256(), info.size
            while left:
                chunk = fh.read(min(CHUNK, left))
                if not chunk:
                    raise VerificationError(f"{path}: member {name} is truncated")
                h.update(chunk)
                left -= len(chunk)
            if h.hexdigest() != want:
                raise VerificationError(
                    f"{path}: member {name} hashes to sha256:{h.hexdigest()}, {CHECKSUMS_MEMBER} says sha256:{want}",
                    hint="the archive changed after it was saved; carry it again",
                )
    raw = _read(path, members[INVENTORY_MEMBER], MAX_INVENTORY_BYTES)
    try:
        inv = Inventory.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidInputError(
            f"{path}: {INVENTORY_MEMBER} is not a valid inventory ({exc.errors()[0]['msg']})"
        ) from None
    if inv.kind != INVENTORY_KIND:
        raise InvalidInputError(f"{path}: {INVENTORY_MEMBER} kind {inv.kind!r}, expected {INVENTORY_KIND!r}")
    inv._digest = "sha256:" + listed[INVENTORY_MEMBER]
    return inv


def verify_inventory_signature(path: Path, trust_root: TrustRoot, *, name: str | None = None) -> str:
    """Verify the archive's inventory envelope with ``trust_root``: present, signed by a trusted
    key, of the inventory payload type, over exactly the inventory's bytes. Returns the key id;
    raises VerificationError (exit 3) naming the archive (``name``, e.g. the volumes a joined
    archive came from) and the failed check."""
    from stella_oci.signing.verify import verify_envelope

    label = name or str(path)
    members = _members(path)
    if SIGNATURE_MEMBER not in members:
        raise VerificationError(
            f"{label}: the archive is not signed (no {SIGNATURE_MEMBER}) and --trust-root asks for a signed "
            "inventory; nothing was written",
            hint="save it again with --sign-key KEY (the private half of a key in the trust root)",
        )
    if INVENTORY_MEMBER not in members:
        raise InvalidInputError(f"{path}: no {INVENTORY_MEMBER}; this archive was not written by stella-oci save")
    source = f"{label}: {SIGNATURE_MEMBER}"
    envelope = _read(path, members[SIGNATURE_MEMBER], MAX_INVENTORY_BYTES * 2)
    verified = verify_envelope(envelope, trust_root, source=source)
    payload_type, payload = verified.payload_type, verified.payload
    if payload_type != PAYLOAD_TYPE_INVENTORY:
        raise VerificationError(
            f"{source}: payloadType {payload_type!r}, expected {PAYLOAD_TYPE_INVENTORY!r}; nothing was written"
        )
    if payload != _read(path, members[INVENTORY_MEMBER], MAX_INVENTORY_BYTES):
        raise VerificationError(
            f"{source}: the signed inventory differs from {INVENTORY_MEMBER}: the inventory was changed after "
            "it was signed; nothing was written",
            hint="carry the archive again as it was saved",
        )
    return verified.key_id


def archive_blobs(path: Path) -> dict[str, str]:
    """What the other side has after loading the save archive ``path``: every blob it holds
    (from its checksums file, checked whole) and every blob it left out itself, each with the
    archive that carried it."""
    inv = check_archive(path)
    members = _members(path)
    lines = _read(path, members[CHECKSUMS_MEMBER], MAX_CHECKSUMS_BYTES).decode().splitlines()
    have = dict(inv.omitted)
    for line in lines:
        name = line.partition("  ")[2]
        if name.startswith("blobs/sha256/"):
            have["sha256:" + name.rsplit("/", 1)[1]] = path.name
    return have


__all__ = [
    "CHECKSUMS_MEMBER",
    "INVENTORY_MEMBER",
    "PAYLOAD_TYPE_INVENTORY",
    "SIGNATURE_MEMBER",
    "Inventory",
    "InventoryExport",
    "archive_blobs",
    "check_archive",
    "checksums_text",
    "derive_origin",
    "previous_generation",
    "verify_inventory_signature",
    "write_archive",
]
