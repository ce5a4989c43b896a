"""fetch: one file of an export, verified, without pulling the rest.

The manifest, its annotations and export.json are checked as by ``pull`` (digest, shape,
schema, annotations, layers against export.json), then only the one layer whose title is
PATH is streamed, hashed and written; it is written under its name only when its digest and
size match (export.json's contents entry and the layer descriptor agree: checked before).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from pydantic import Field

from stella_oci import interrupts
from stella_oci.errors import InvalidInputError, NotFoundError
from stella_oci.export.bundle import EXPORT_JSON
from stella_oci.oci.digest import write_verified
from stella_oci.oci.reference import Reference
from stella_oci.results import LayerInfo, ResultModel
from stella_oci.targets.verified import write_blob
from stella_oci.verbs.common import RunOptions, as_reference, check_output_parent, layer_infos, open_source


class FetchResult(ResultModel):
    """The one file ``fetch`` wrote, verified (``stella-oci fetch --format json``)."""

    reference: str
    """The export, ``host/repo@sha256:...``."""
    digest: str
    """The OCI manifest digest of the export."""
    path: str
    """The file's path in the export."""
    output: str
    """Where it was written (``-`` for stdout)."""
    layer: LayerInfo
    export_id: str = Field(serialization_alias="exportId")


def fetch(
    reference: str | Reference,
    path: str,
    output: str | Path | None = None,
    *,
    expect_digest: str | None = None,
    run: RunOptions | None = None,
) -> FetchResult:
    """Write the file ``path`` of the export ``reference`` to ``output`` (default: its base
    name in the current directory; ``"-"``: stdout, after it verified)."""
    from stella_oci.verbs.pull import fetch_export

    run = run or RunOptions()
    ref = as_reference(reference)
    wanted = path.strip().removeprefix("./")
    if not wanted:
        raise InvalidInputError("fetch: give the path of a file in the export, e.g. data/index.json")
    dest = str(output) if output is not None else Path(wanted).name
    if dest != "-" and not Path(dest).is_dir():
        check_output_parent(Path(dest), "--output")
    src = open_source(ref, run)
    try:
        with interrupts.temp_dir("stella-oci-fetch-") as workdir:
            fetched, _rest = fetch_export(ref, src, expect_digest=expect_digest, workdir=workdir)
            layers = [d for d in fetched.manifest.layers if d.title == wanted]
            if not layers:
                listed = sorted(d.title for d in fetched.manifest.layers if d.title)
                raise NotFoundError(
                    f"{ref.base()}@{fetched.desc.digest}: the export has no file {wanted!r}",
                    hint="its files: " + ", ".join(listed[:20]) + (" ..." if len(listed) > 20 else ""),
                )
            layer = layers[0]
            staged = workdir / "file"
            if wanted == EXPORT_JSON and fetched.export_json is not None:
                staged = fetched.export_json  # verified already (digest, size, schema)
            else:
                write_blob(src, layer, staged, limit=None, what=f"{ref.base()} layer {wanted}")
            if dest == "-":
                with open(staged, "rb") as fh:
                    shutil.copyfileobj(fh, sys.stdout.buffer)
                sys.stdout.buffer.flush()
            else:
                target = Path(dest)
                if target.is_dir():
                    target = target / Path(wanted).name
                with open(staged, "rb") as fh:
                    write_verified(
                        iter(lambda: fh.read(1024 * 1024), b""), target, layer.digest, layer.size, str(target)
                    )
                dest = str(target)
    finally:
        src.close()
    return FetchResult(
        reference=f"{ref.base()}@{fetched.desc.digest}",
        digest=fetched.desc.digest,
        path=wanted,
        output=dest,
        layer=layer_infos([layer])[0],
        export_id=fetched.model.export_id,
    )
