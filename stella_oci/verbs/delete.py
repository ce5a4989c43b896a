"""delete: remove a manifest from a registry, by digest.

A bare tag is refused unless ``force``: deleting a manifest removes it under every tag that
points at it, which a tag does not show. A registry with deletes disabled (distribution's
default: 405 UNSUPPORTED) is named as such.
"""

from __future__ import annotations

from stella_oci.errors import InvalidInputError
from stella_oci.oci.reference import Reference
from stella_oci.results import ResultModel
from stella_oci.verbs.common import RunOptions, as_reference, open_destination, selector_of


class DeleteResult(ResultModel):
    """What ``delete`` removed (``stella-oci delete --format json``)."""

    reference: str
    """The deleted manifest, ``host/repo@sha256:...``."""
    digest: str
    resolved_from: str | None = None
    """The tag it was resolved from (``--force``), when deleted by tag."""


def delete(reference: str | Reference, *, force: bool = False, run: RunOptions | None = None) -> DeleteResult:
    """Delete the manifest ``reference`` names (``host/repo@sha256:...``; a tag needs ``force``)."""
    run = run or RunOptions()
    ref = as_reference(reference)
    if ref.transport != "registry":
        raise InvalidInputError(
            f"{ref}: delete works on registries",
            hint="an oci: directory or oci-archive: file is edited with copy (or removed as a file)",
        )
    selector = selector_of(ref, "delete")
    if not ref.digest and not force:
        raise InvalidInputError(
            f"{ref}: refusing to delete by tag: the manifest goes away under every tag that points at it",
            hint=f"delete by digest (stella-oci resolve {ref} prints it), or add --force",
        )
    from stella_oci.targets.registry import RegistryTarget
    from stella_oci.transport.repository import delete_manifest

    target = open_destination(ref, run)  # --offline refuses here
    try:
        assert isinstance(target, RegistryTarget)
        digest = ref.digest or target.resolve(selector).digest
        delete_manifest(target.client, ref.repository, digest)
    finally:
        target.close()
    return DeleteResult(
        reference=f"{ref.base()}@{digest}", digest=digest, resolved_from=None if ref.digest else ref.tag
    )
