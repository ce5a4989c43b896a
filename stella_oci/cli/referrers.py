"""attach and discover: OCI 1.1 referrers (signatures, provenance, SBOMs) of an export.

Also :func:`signatures_text`, the text lines pull / verify print for the signatures they checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stella_oci.cli.common import EXIT_CODE_HELP, Context, command, common_options
from stella_oci.output import human_size

if TYPE_CHECKING:
    from stella_oci.results import VerifyResult
    from stella_oci.verbs.referrers import AttachResult, DiscoverResult


# ----------------------------------------------------------------------------- text for pull / verify
def signatures_text(result: VerifyResult) -> list[str]:
    """Lines for the text output of pull / verify when signatures were checked."""
    sig = result.signatures
    if sig is None:
        return []
    lines = []
    for e in sig.envelopes:
        who = f"verified, key {e.key_name}" if e.verified else "NOT verified (no trust root)"
        lines.append(f"  signature:       {e.name}: {who}; {e.binding}")
    stella = sig.stella_signature
    if stella is not None:
        who = f"verified, key {stella.key_name}" if stella.verified else "NOT verified"
        lines.append(f"  X-Stella-Signature: {who}")
    if sig.provenance is not None:
        lines.append(f"  provenance:      {sig.provenance.name} names export.json with its sha256")
    for b in sig.sigstore_bundles:
        who = (
            f"verified, {b.identity} (issuer {b.issuer}), log index {b.log_index}; {b.binding}"
            if b.verified
            else "NOT verified (no Sigstore trusted root)"
        )
        lines.append(f"  sigstore bundle: {b.name}: {who}")
    if not lines:
        lines.append("  signatures:      none found")
    return lines


_SOURCE_TEXT = {
    "referrers-api": "the registry's referrers API",
    "fallback-tag": "the referrers tag schema (registry without the referrers API)",
    "oci-layout": "the OCI layout's index.json",
}


@click.command(
    epilog="\b\nExamples:\n"
    "  stella-oci attach localhost:5000/stellaops/mirror:v1 export.json.dsse.json \\\n"
    "      --artifact-type application/vnd.dsse.envelope.v1+json\n"
    "  stella-oci attach ghcr.io/acme/exports@sha256:4f... sbom.cdx.json \\\n"
    "      --artifact-type application/vnd.cyclonedx+json --annotation team=ops\n"
    "  stella-oci attach oci:./layout:v1 provenance.json --artifact-type application/vnd.in-toto+json\n\n"
    + EXIT_CODE_HELP
)
@click.argument("reference")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--artifact-type", required=True, metavar="TYPE", help="artifactType of the referrer manifest (required)."
)
@click.option(
    "--annotation",
    "-a",
    "annotations",
    multiple=True,
    metavar="K=V",
    help="Annotation on the referrer manifest (repeatable); io.stellaops.* is reserved.",
)
@click.option(
    "--media-type", metavar="TYPE", help="Media type of the file's layer (default: the artifact type)."
)
@common_options
@command
def attach(
    ctx: Context,
    reference: str,
    file: Path,
    artifact_type: str,
    annotations: tuple[str, ...],
    media_type: str | None,
    **_: Any,
) -> tuple[AttachResult, str]:
    """Push FILE as an OCI 1.1 referrer of the manifest REFERENCE names.

    Uses the registry's referrers API when it has one (it answers OCI-Subject), else the
    referrers tag schema: the sha256-<hex> tag holding an index of referrers, updated without
    dropping the entries other clients added. Prints the referrer's reference with its digest.
    """
    from stella_oci.verbs.referrers import attach as attach_api

    r = attach_api(
        reference,
        file,
        artifact_type=artifact_type,
        annotations=annotations,
        media_type=media_type,
        run=ctx.run("attach"),
    )
    lines = [r.reference]
    if not ctx.quiet:
        lines += [
            f"  subject:      {r.subject_reference}",
            f"  artifactType: {r.artifact_type}",
            f"  file:         {r.layer.path} ({human_size(r.layer.size)}, {r.layer.digest})",
            f"  listed via:   {_SOURCE_TEXT[r.via]}" + (f" ({r.fallback_tag})" if r.fallback_tag else ""),
        ]
        lines += [f"  annotation:   {k}={v}" for k, v in sorted(r.annotations.items())]
    return r, "\n".join(lines)


@click.command(
    epilog="\b\nExamples:\n"
    "  stella-oci discover localhost:5000/stellaops/mirror:v1\n"
    "  stella-oci discover ghcr.io/acme/exports:v1 --artifact-type application/vnd.dsse.envelope.v1+json\n"
    "  stella-oci discover oci-archive:./exports.tar:v1 --format json\n\n" + EXIT_CODE_HELP
)
@click.argument("reference")
@click.option("--artifact-type", metavar="TYPE", help="Only referrers of this artifactType.")
@common_options
@command
def discover(ctx: Context, reference: str, artifact_type: str | None, **_: Any) -> tuple[DiscoverResult, str]:
    """List the referrers (signatures, provenance, ...) of the manifest REFERENCE names.

    Reads the registry's referrers API, or the sha256-<hex> fallback tag where there is none,
    or an OCI layout's index.json.
    """
    from stella_oci.verbs.referrers import discover as discover_api

    r = discover_api(reference, artifact_type=artifact_type, run=ctx.run("discover"))
    lines = [r.reference]
    if not ctx.quiet:
        lines.append(f"  source: {_SOURCE_TEXT[r.source]}")
    if not r.referrers:
        lines.append("  (no referrers" + (f" of type {artifact_type})" if artifact_type else ")"))
    for d in r.referrers:
        lines.append(f"  {d.digest}  {d.artifact_type or '-'}  {d.size} B")
        if not ctx.quiet:
            lines += [f"      {k}: {v}" for k, v in sorted(d.annotations.items())]
    return r, "\n".join(lines)


COMMANDS = [attach, discover]
