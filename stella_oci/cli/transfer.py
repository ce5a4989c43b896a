"""push, pull, verify, inspect and copy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stella_oci.cli.common import (
    EXIT_CODE_HELP,
    Context,
    airgap_from,
    airgap_options,
    checks_from,
    command,
    common_options,
    signature_options,
)
from stella_oci.output import human_size

if TYPE_CHECKING:
    from stella_oci.results import (
        ClockInfo,
        CopyResult,
        InspectResult,
        PushResult,
        StalenessResult,
        VerifyResult,
    )


# ----------------------------------------------------------------------------- push
@click.command(
    epilog="\b\nExamples:\n"
    "  stella-oci push ./export localhost:5000/stellaops/mirror:2026-11-20\n"
    "  stella-oci push export.tar.gz ghcr.io/acme/exports --tag latest --annotation team=ops\n"
    "  stella-oci push ./export            # uses export.json distribution.oci.reference\n"
    "  stella-oci push ./export oci:./layout:v1\n\n" + EXIT_CODE_HELP
)
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("reference", required=False)
@click.option("--tag", "-t", "tags", multiple=True, help="Extra tag (repeatable). Default tag: the exportId.")
@click.option(
    "--annotation",
    "-a",
    "annotations",
    multiple=True,
    metavar="K=V",
    help="Extra manifest annotation (repeatable); io.stellaops.* is reserved.",
)
@click.option(
    "--provenance-ref", help="Value of io.stellaops.export.provenance-ref when the bundle names none."
)
@click.option(
    "--allow-unlisted", is_flag=True, help="Leave files export.json does not list behind instead of refusing."
)
@click.option(
    "--attach-signatures",
    is_flag=True,
    help="Also attach the DSSE envelopes and provenance.json as OCI 1.1 referrers of the manifest.",
)
@common_options
@command
def push(
    ctx: Context,
    bundle: Path,
    reference: str | None,
    tags: tuple[str, ...],
    annotations: tuple[str, ...],
    provenance_ref: str | None,
    allow_unlisted: bool,
    attach_signatures: bool,
    **_: Any,
) -> tuple[PushResult, str]:
    """Validate BUNDLE (a directory or .tar/.tar.gz/.tar.zst) and push it to REFERENCE.

    Prints the reference with its digest. Nothing is sent unless export.json validates, every
    listed file has the stated digest and size, every path is safe and no file is unlisted.
    """
    from stella_oci.verbs.push import push as push_verb  # the verb alone, not all of stella_oci.api

    result = push_verb(
        bundle,
        reference,
        tags=tags,
        annotations=annotations,
        provenance_ref=provenance_ref,
        allow_unlisted=allow_unlisted,
        attach_signatures=attach_signatures,
        run=ctx.run("push"),
    )
    t = result.transfer
    lines = [result.reference]
    if not ctx.quiet:
        lines += [
            f"  tags:            {', '.join(result.tags)}",
            f"  export:          {result.export_id} ({result.profile})",
            f"  export manifest-digest: {result.export_manifest_digest}",
            f"  layers:          {len(result.layers)} ({human_size(sum(layer.size for layer in result.layers))}); "
            f"sent {t.uploaded}, already there {t.skipped}, mounted {t.mounted}",
        ]
        if result.referrers:
            lines.append(f"  referrers:       {len(result.referrers)} attached (signatures, provenance)")
        if result.ignored:
            lines.append(f"  left behind:     {', '.join(result.ignored)}")
    return result, "\n".join(lines)


# ----------------------------------------------------------------------------- pull / verify
def _staleness_text(staleness: StalenessResult | None) -> str:
    if staleness is None:
        return ""
    days = (staleness.stalenessSeconds or 0) / 86400
    limit = (staleness.thresholdSeconds or 0) / 86400
    line = (
        f"\n  staleness:       {days:.1f} days (threshold {limit:.1f} days, "
        f"{staleness.enforcementMode or '?'}): {'passed' if staleness.passed else 'FAILED'}"
    )
    for w in staleness.warnings or []:
        line += f"\n  warning:         {w.code}: {w.message}"
    return line


def clock_text(clock: ClockInfo | None) -> str:
    """The clock line of a text result: which "now" was used, and whether it is verified."""
    if clock is None:
        return ""
    if clock.source == "system-clock":
        what = f"this host's system clock {clock.timestamp} (UNVERIFIED: no --time-anchor)"
    elif clock.verified:
        what = f"signed time anchor {clock.file} {clock.timestamp} (verified, key {clock.key_name})"
    else:
        what = f"time anchor {clock.file} {clock.timestamp} (UNVERIFIED: not signed)"
    return f"\n  clock:           {what}"


def _verify_text(result: VerifyResult, quiet: bool, verb: str) -> str:
    head = f"{verb} {result.reference}" + (f" -> {result.output}" if result.output else "")
    if result.served_by:
        head += f"\n  served by mirror {result.served_by}"
    if quiet:
        return head
    lines = [
        head,
        f"  export:          {result.export_id} ({result.profile}, tenant {result.tenant}, generated {result.generated_at})",
        f"  digest:          {result.digest}",
        f"  export manifest-digest: {result.export_manifest_digest}",
        f"  layers:          {len(result.layers)} ({human_size(sum(layer.size for layer in result.layers))})",
        "  checked:",
        *[f"    - {c}" for c in result.checks],
    ]
    from stella_oci.cli.referrers import signatures_text

    lines += signatures_text(result)
    return "\n".join(lines) + _staleness_text(result.staleness) + clock_text(result.clock)


@click.command(
    epilog="\b\nExamples:\n"
    "  stella-oci pull localhost:5000/stellaops/mirror:2026-11-20 --output ./mirror\n"
    "  stella-oci pull ghcr.io/acme/exports:v1 -o ./got --expect-digest sha256:4f...\n"
    "  stella-oci pull oci-archive:./exports.tar:v1 -o ./got --offline\n\n" + EXIT_CODE_HELP
)
@click.argument("reference")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="New (or empty) directory to write the bundle into.",
)
@click.option("--expect-digest", help="Fail (exit 3) unless the manifest has this sha256 digest.")
@signature_options
@airgap_options
@common_options
@command
def pull(
    ctx: Context, reference: str, output: Path, expect_digest: str | None, **kw: Any
) -> tuple[VerifyResult, str]:
    """Fetch REFERENCE into --output, verifying everything.

    A failed check leaves nothing at --output. The pull is recorded in the import ledger.
    """
    from dataclasses import replace

    from stella_oci.verbs.airgap import AirgapOptions
    from stella_oci.verbs.pull import pull as pull_verb

    # the command line records every pull in the import ledger (the default one without --ledger)
    airgap = replace(airgap_from(kw) or AirgapOptions(), record_in_default_ledger=True)
    result = pull_verb(
        reference,
        output,
        expect_digest=expect_digest,
        run=ctx.run("pull"),
        airgap=airgap,
        checks=checks_from(kw),
    )
    return result, _verify_text(result, ctx.quiet, "pulled")


@click.command(
    epilog="\b\nExamples:\n"
    "  stella-oci verify localhost:5000/stellaops/mirror:2026-11-20\n"
    "  stella-oci verify ./pulled-bundle --expect-digest sha256:4f...\n\n" + EXIT_CODE_HELP
)
@click.argument("target")
@click.option("--expect-digest", help="Fail (exit 3) unless the manifest has this sha256 digest.")
@signature_options
@airgap_options
@common_options
@command
def verify(ctx: Context, target: str, expect_digest: str | None, **kw: Any) -> tuple[VerifyResult, str]:
    """Run every check of pull on TARGET (a reference or bundle dir), writing nothing."""
    from stella_oci.verbs.pull import verify as verify_verb

    result = verify_verb(
        target,
        expect_digest=expect_digest,
        run=ctx.run("verify"),
        airgap=airgap_from(kw),
        checks=checks_from(kw),
    )
    return result, _verify_text(result, ctx.quiet, "verified")


@click.command(
    epilog="\b\nExamples:\n"
    "  stella-oci inspect localhost:5000/stellaops/mirror:2026-11-20\n"
    "  stella-oci inspect --format json ghcr.io/acme/exports:v1 | jq .annotations\n\n" + EXIT_CODE_HELP
)
@click.argument("reference")
@common_options
@command
def inspect(ctx: Context, reference: str, **_: Any) -> tuple[InspectResult, str]:
    """Show the manifest, annotations and layers of REFERENCE without downloading layers."""
    from stella_oci.verbs.inspect import inspect as inspect_verb

    r = inspect_verb(reference, run=ctx.run("inspect"))
    lines = [
        r.reference,
        f"  mediaType:    {r.media_type}",
        f"  artifactType: {r.artifact_type or '-'}",
        "  annotations:",
    ]
    lines += [f"    {k}: {v}" for k, v in sorted(r.annotations.items())] or ["    (none)"]
    lines.append("  layers:")
    lines += [
        f"    {layer.digest}  {layer.size:>12}  {layer.media_type}  {layer.path or ''}" for layer in r.layers
    ]
    return r, "\n".join(lines)


@click.command(
    epilog="\b\nExamples:\n"
    "  stella-oci copy ghcr.io/acme/exports:v1 oci-archive:./exports-v1.tar:v1\n"
    "  stella-oci copy oci-archive:./exports-v1.tar:v1 mirror.local:5000/acme/exports:v1\n"
    "  stella-oci copy localhost:5000/a/b:v1 oci:./layout:v1\n\n" + EXIT_CODE_HELP
)
@click.argument("source")
@click.argument("destination")
@click.option("--no-referrers", is_flag=True, help="Do not copy attached signatures and provenance.")
@click.option(
    "--no-signatures",
    is_flag=True,
    help="Do not copy cosign's tag-scheme signatures, attestations and SBOMs (sha256-<hex>.sig/.att/.sbom).",
)
@signature_options
@airgap_options
@common_options
@command
def copy(
    ctx: Context, source: str, destination: str, no_referrers: bool, no_signatures: bool, **kw: Any
) -> tuple[CopyResult, str]:
    """Copy an artifact between registries, oci:DIR and oci-archive:FILE, digests unchanged.

    A StellaOps export is verified as by `verify` first; a copy into a registry or oci:DIR is an
    import (staleness checked with --staleness-config, recorded in the ledger).
    """
    from stella_oci.verbs.copy import copy as copy_verb

    r = copy_verb(
        source,
        destination,
        referrers=not no_referrers,
        signatures=not no_signatures,
        run=ctx.run("copy"),
        airgap=airgap_from(kw),
        checks=tuple(checks_from(kw)),
    )
    t = r.transfer
    text = (
        f"{r.destination}\n  from {r.source}; blobs sent {t.uploaded} ({human_size(t.bytes)}), "
        f"already there {t.skipped}, mounted {t.mounted}; referrers {len(r.referrers)}"
    )
    text += "".join(f"\n  cosign {c.tag} {c.digest}" for c in r.cosign_tags)
    if r.served_by:
        text += f"\n  served by mirror {r.served_by}"
    text += _staleness_text(r.staleness) + clock_text(r.clock)
    return r, text


COMMANDS = [push, pull, verify, inspect, copy]
