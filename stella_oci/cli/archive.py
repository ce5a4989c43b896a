"""save / load: many exports per transfer into and out of the air gap (docs/airgap.md)."""

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

if TYPE_CHECKING:  # the verbs import pydantic and the engine: loaded when a command runs (fast --help)
    from stella_oci.verbs.have import HaveResult
    from stella_oci.verbs.load import LoadResult
    from stella_oci.verbs.save import SaveResult


@click.command(
    epilog="\b\nExamples:\n"
    "  stella-oci save registry.a:5000/exports/mirror --latest 2 registry.a:5000/exports/trivy:db-1 \\\n"
    "      --output weekly.tar\n"
    "  stella-oci save registry.a:5000/exports/vex --tags '^2026-11-' --output vex.tar\n\n" + EXIT_CODE_HELP
)
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The oci-archive to write (replaced atomically), in an existing directory.",
)
@click.option("--tags", "tags_regex", metavar="REGEX", help="For a repository SRC: the tags matching REGEX.")
@click.option(
    "--latest",
    type=click.IntRange(min=1),
    metavar="N",
    help="For a repository SRC: the N newest exports (manifests) by org.opencontainers.image.created, "
    "with all their tags.",
)
@click.option("--all-tags", is_flag=True, help="For a repository SRC: every tag.")
@click.option(
    "--generation",
    type=click.IntRange(min=1),
    help="The archive's mirrorGeneration (load refuses one not above the last applied); "
    "default: the --since archive's + 1, else 1.",
)
@click.option(
    "--since",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="PREVIOUS",
    help="An increment: leave out every blob the previous save archive carried, or that a have-list "
    "(stella-oci have DEST) says the mirror holds (manifests always travel).",
)
@click.option(
    "--split-size",
    metavar="SIZE",
    help="Write volumes FILE.000, FILE.001, ... of at most SIZE (e.g. 4GiB) with FILE.parts.json.",
)
@click.option(
    "--no-signatures",
    is_flag=True,
    help="Leave cosign's tag-scheme signatures, attestations and SBOMs (sha256-<hex>.sig/.att/.sbom).",
)
@click.option(
    "--sign-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="KEY",
    help="Sign the inventory as a DSSE envelope with this PEM private key (Ed25519, ECDSA, RSA); "
    "load --trust-root verifies it. An encrypted key's password: $STELLA_OCI_SIGN_KEY_PASSWORD.",
)
@common_options
@command
def save(
    ctx: Context,
    sources: tuple[str, ...],
    output: Path,
    tags_regex: str | None,
    latest: int | None,
    all_tags: bool,
    generation: int | None,
    since: Path | None,
    split_size: str | None,
    no_signatures: bool,
    sign_key: Path | None,
    **_: Any,
) -> tuple[SaveResult, str]:
    """Save many exports (SRC: a reference, or a repository with --tags/--latest/--all-tags) into
    one oci-archive with an inventory and checksums; shared blobs are stored once."""
    from stella_oci.verbs.save import save as do_save

    r = do_save(
        list(sources),
        output,
        tags=tags_regex,
        latest=latest,
        all_tags=all_tags,
        generation=generation,
        since=since,
        split_size=_parse_size(split_size) if split_size else None,
        signatures=not no_signatures,
        sign_key=sign_key,
        run=ctx.run("save"),
    )
    exports = len({(e.repository, e.digest) for e in r.exports})  # (one export, several tags: once)
    lines = [
        f"{r.output}: {exports} export(s)"
        + (f" under {len(r.exports)} tags" if len(r.exports) != exports else "")
        + f", {r.blobs} blobs, {human_size(r.bytes)}, "
        f"mirrorGeneration {r.mirror_generation}"
        + (f", {r.left_out} blob(s) left out (--since)" if r.left_out else "")
        + (f", {r.cosign_tags} cosign tag(s)" if r.cosign_tags else "")
        + (f", inventory signed by key {r.signed_by}" if r.signed_by else "")
    ]
    lines += [f"  volume {p}" for p in r.parts]
    lines += [f"  {e.source}:{e.tag or '-'}@{e.digest}" for e in r.exports]
    return r, "\n".join(lines)


@click.command(
    epilog="\b\nExamples:\n"
    "  stella-oci load weekly.tar mirror.local:5000 --dry-run\n"
    "  stella-oci load weekly.tar mirror.local:5000/stella --trust-root keys/\n\n" + EXIT_CODE_HELP
)
@click.argument("archives", nargs=-1, required=True)
@click.argument("destination")
@click.option(
    "--dry-run", is_flag=True, help="Print the exports and new blobs that would move; write nothing."
)
@click.option(
    "--no-signatures",
    is_flag=True,
    help="Leave the cosign tags (sha256-<hex>.sig/.att/.sbom) the archive carries.",
)
@signature_options
@airgap_options
@common_options
@command
def load(
    ctx: Context,
    archives: tuple[str, ...],
    destination: str,
    dry_run: bool,
    no_signatures: bool,
    **kw: Any,
) -> tuple[LoadResult, str]:
    """Load the exports of save archives into DEST (registry host, host/prefix or oci:DIR); each
    lands at DEST/<its source repository>, verified; a failed one is quarantined (exit 3).
    With --trust-root, each archive's inventory must be signed (save --sign-key) by a key in it."""
    from stella_oci.verbs.load import load as do_load

    trust_root = kw.get("trust_root")
    checks = tuple(checks_from(kw))
    r = do_load(
        list(archives),
        destination,
        dry_run=dry_run,
        signatures=not no_signatures,
        run=ctx.run("load"),
        airgap=airgap_from(kw),
        checks=checks,
        trust_root=trust_root,
    )
    lines = [f"inventory of {a}: signature verified (key {k})" for a, k in r.inventory_signed_by.items()]
    for a in r.activations:
        before = a.previous_generation if a.previous_generation is not None else "-"
        lines.append(
            f"{a.archive}: mirrorGeneration {a.mirror_generation} of {a.origin} {a.status} (before: {before})"
            + (f"; FORCED: {a.force_reason}" if a.force_reason else "")
        )
    for e in r.exports:
        line = f"{e.status:<12} {e.destination}@{e.digest}"
        if e.new_blobs is not None:
            line += f"  new blobs {e.new_blobs} ({human_size(e.new_bytes or 0)})"
        lines.append(line)
        lines += [f"  cosign {t}" for t in e.cosign_tags]
    if dry_run:
        lines.append("dry run: nothing was written")
    from stella_oci.cli.transfer import clock_text

    return r, "\n".join(lines) + clock_text(r.clock)


@click.command(
    epilog="\b\nExamples:\n"
    "  stella-oci have mirror.local:5000 --output have.json          # every repository (catalog API)\n"
    "  stella-oci have mirror.local:5000/stella --output have.json   # the ones below a prefix\n"
    "  stella-oci have mirror.local:5000 stellaops/mirror stellaops/trivy --output have.json\n"
    "  stella-oci save registry.a:5000/exports/mirror --latest 1 --since have.json --output week.tar\n\n"
    + EXIT_CODE_HELP
)
@click.argument("destination")
@click.argument("repositories", nargs=-1)
@click.option(
    "--output",
    "-o",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The have-list to write (JSON, replaced atomically), in an existing directory.",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 10000),
    default=1000,
    show_default=True,
    help="Repositories per catalog request (n=).",
)
@click.option(
    "--ledger",
    "ledger",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Import ledger load recorded into, for the last generation applied at DEST "
    "(default: $STELLA_OCI_LEDGER or the user data dir, when it exists).",
)
@common_options
@command
def have(
    ctx: Context,
    destination: str,
    repositories: tuple[str, ...],
    output: Path,
    page_size: int,
    ledger: Path | None,
    **_: Any,
) -> tuple[HaveResult, str]:
    """Write the have-list of a mirror (DEST as given to load: registry host, host/prefix or
    oci:DIR): its repositories, tags and blobs, for save --since. Without REPOSITORY arguments
    the registry's catalog API lists them; name them when the registry has it disabled."""
    from stella_oci.verbs.have import have as do_have

    r = do_have(
        destination, list(repositories), output=output, page_size=page_size, ledger=ledger, run=ctx.run("have")
    )
    lines = [
        f"{r.output}: {r.repositories} repositories, {r.tags} tags, {r.blobs} blobs held by {r.destination}"
        + (" (from the catalog)" if r.catalog else "")
    ]
    lines += [f"  not at {r.destination}: {m}" for m in r.missing]
    lines += [f"  generation {g} of {o} applied (save --since numbers above it)" for o, g in r.generations.items()]
    return r, "\n".join(lines)


COMMANDS = [save, load, have]


def _parse_size(text: str) -> int:
    from stella_oci.airgap.volumes import parse_size  # not at import: --help stays light

    return parse_size(text)
