"""tag: more tags for a manifest that is already there. Manifest GETs and one manifest PUT per
new tag: no blob is read or written, nothing is recorded in the import ledger."""

from __future__ import annotations

from collections.abc import Sequence

from stella_oci.errors import InvalidInputError
from stella_oci.oci.reference import Reference, check_tag
from stella_oci.results import ResultModel
from stella_oci.verbs.common import RunOptions, as_reference, open_destination, selector_of


class TagResult(ResultModel):
    """The tags ``tag`` set (manifest PUTs only, no blob traffic)."""

    reference: str
    """The tagged manifest, ``host/repo@sha256:...``."""
    digest: str
    tags: list[str]
    """The tags set (each now points at ``digest``)."""


def tag(reference: str | Reference, tags: str | Sequence[str], *, run: RunOptions | None = None) -> TagResult:
    """Point each of ``tags`` at the manifest ``reference`` names (same repository)."""
    run = run or RunOptions()
    new = [tags] if isinstance(tags, str) else list(tags)
    if not new:
        raise InvalidInputError("tag: give at least one new tag", hint="stella-oci tag REF NEWTAG...")
    new = list(dict.fromkeys(check_tag(t) for t in new))
    ref = as_reference(reference)
    if ref.transport == "oci-archive":
        raise InvalidInputError(
            f"{ref}: an oci-archive: file is not re-tagged in place",
            hint="copy it with the new tag: stella-oci copy oci-archive:FILE:OLD oci-archive:NEW.tar:NEWTAG",
        )
    dst = open_destination(ref, run)
    try:
        desc = dst.resolve(selector_of(ref, "tag"))
        for t in new:
            dst.tag(desc, t)  # the manifest again under the tag: no blob moves
        dst.commit()
    except BaseException:
        dst.abort()
        raise
    finally:
        dst.close()
    return TagResult(reference=f"{ref.base()}@{desc.digest}", digest=desc.digest, tags=new)
