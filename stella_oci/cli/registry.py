"""The everyday registry verbs: tags, resolve, tag, delete, manifest, fetch, login, logout."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from stella_oci.cli.common import EXIT_CODE_HELP, Context, command, common_options
from stella_oci.output import human_size

if TYPE_CHECKING:
    from stella_oci.verbs.delete import DeleteResult
    from stella_oci.verbs.fetch import FetchResult
    from stella_oci.verbs.login import LoginResult, LogoutResult
    from stella_oci.verbs.resolve import ManifestResult, ResolveResult
    from stella_oci.verbs.tag import TagResult
    from stella_oci.verbs.tags import TagsResult


def _examples(*lines: str) -> str:
    return "\b\nExamples:\n" + "".join(f"  {line}\n" for line in lines) + "\n" + EXIT_CODE_HELP


# ----------------------------------------------------------------------------- tags
@click.command(
    epilog=_examples(
        "stella-oci tags localhost:5000/stellaops/exports",
        "stella-oci tags ghcr.io/acme/exports --filter '^2026-11-' --sort created",
        "stella-oci tags oci-archive:./exports.tar --format json",
    )
)
@click.argument("repository")
@click.option("--filter", "pattern", metavar="REGEX", help="Only tags this regular expression matches.")
@click.option(
    "--sort",
    type=click.Choice(["name", "created"]),
    default="name",
    show_default=True,
    help="created: newest first by the manifest's org.opencontainers.image.created (reads each manifest).",
)
@click.option("--last", metavar="TAG", help="Start after this tag (registry pagination).")
@click.option(
    "--page-size",
    type=click.IntRange(1, 10000),
    default=1000,
    show_default=True,
    help="Tags per request (n=).",
)
@common_options
@command
def tags(
    ctx: Context,
    repository: str,
    pattern: str | None,
    sort: str,
    last: str | None,
    page_size: int,
    **_: Any,
) -> tuple[TagsResult, str | None]:
    """List the tags of REPOSITORY (host/repo, oci:DIR or oci-archive:FILE), one per line."""
    from stella_oci.verbs.tags import tags as tags_api

    r = tags_api(
        repository,
        filter=pattern,
        sort="created" if sort == "created" else "name",
        page_size=page_size,
        last=last,
        run=ctx.run("tags"),
    )
    if r.details and not ctx.quiet:  # no tag matched: no output at all, not an empty line
        return r, "\n".join(f"{d.tag}\t{d.created or '-'}\t{d.digest}" for d in r.details)
    return r, "\n".join(r.tags) if r.tags else None


# ----------------------------------------------------------------------------- resolve
@click.command(
    epilog=_examples(
        "stella-oci resolve localhost:5000/stellaops/exports:v1",
        "DIGEST=$(stella-oci resolve ghcr.io/acme/exports:v1 --digest-only)",
        "stella-oci resolve oci-archive:./exports.tar:v1",
    )
)
@click.argument("reference")
@common_options
@command
def resolve(ctx: Context, reference: str, **_: Any) -> tuple[ResolveResult, str]:
    """Print REFERENCE pinned by digest: host/repo@sha256:... (ORAS resolve, crane digest)."""
    from stella_oci.verbs.resolve import resolve as resolve_api

    r = resolve_api(reference, run=ctx.run("resolve"))
    return r, r.reference


# ----------------------------------------------------------------------------- tag
@click.command(
    epilog=_examples(
        "stella-oci tag localhost:5000/stellaops/exports:2026-11-20 latest stable",
        "stella-oci tag ghcr.io/acme/exports@sha256:4f... v1.2.3",
        "stella-oci tag oci:./layout:v1 latest",
    )
)
@click.argument("reference")
@click.argument("new_tags", metavar="NEWTAG...", nargs=-1, required=True)
@common_options
@command
def tag(ctx: Context, reference: str, new_tags: tuple[str, ...], **_: Any) -> tuple[TagResult, str]:
    """Point NEWTAG... at the manifest REFERENCE names, in the same repository.

    Only the manifest is read and written again under each tag: no blob moves, nothing is
    recorded in the import ledger.
    """
    from stella_oci.verbs.tag import tag as tag_api

    r = tag_api(reference, new_tags, run=ctx.run("tag"))
    base = r.reference.split("@", 1)[0]
    return r, "\n".join(f"{base}:{t} -> {r.digest}" for t in r.tags)


# ----------------------------------------------------------------------------- delete
@click.command(
    epilog=_examples(
        "stella-oci delete localhost:5000/stellaops/exports@sha256:4f...",
        "stella-oci delete harbor.local/acme/exports:old-2026-01 --force",
    )
)
@click.argument("reference")
@click.option(
    "--force", is_flag=True, help="Allow REFERENCE to be a tag: its manifest goes away under every tag."
)
@common_options
@command
def delete(ctx: Context, reference: str, force: bool, **_: Any) -> tuple[DeleteResult, str]:
    """Delete the manifest REFERENCE names from its registry (by digest; a tag needs --force).

    Blobs are left to the registry's garbage collection. A registry with deletes disabled
    (the distribution registry's default) says so: exit 3, nothing deleted.
    """
    from stella_oci.verbs.delete import delete as delete_api

    r = delete_api(reference, force=force, run=ctx.run("delete"))
    return r, f"deleted {r.reference}" + (f" (was tag {r.resolved_from})" if r.resolved_from else "")


# ----------------------------------------------------------------------------- manifest
@click.command(
    epilog=_examples(
        "stella-oci manifest localhost:5000/stellaops/exports:v1 | sha256sum",
        "stella-oci manifest ghcr.io/acme/exports@sha256:4f... > manifest.json",
        "stella-oci manifest oci:./layout:v1 --format json",
    )
)
@click.argument("reference")
@common_options
@command
def manifest(ctx: Context, reference: str, **_: Any) -> tuple[ManifestResult, str | None]:
    """Print the manifest of REFERENCE: the raw bytes exactly as stored (no newline added),
    after checking they hash to the digest (and to the registry's Docker-Content-Digest)."""
    from stella_oci.verbs.resolve import manifest as manifest_api

    r = manifest_api(reference, run=ctx.run("manifest"))
    if ctx.fmt == "text":
        sys.stdout.buffer.write(r.data)
        sys.stdout.buffer.flush()
    return r, None


# ----------------------------------------------------------------------------- fetch
@click.command(
    epilog=_examples(
        "stella-oci fetch localhost:5000/stellaops/exports:v1 data/index.json",
        "stella-oci fetch ghcr.io/acme/exports@sha256:4f... export.json -o - | jq .exportId",
        "stella-oci fetch oci-archive:./exports.tar:v1 data/packages.ndjson -o ./packages.ndjson",
    )
)
@click.argument("reference")
@click.argument("path")
@click.option(
    "--output",
    "-o",
    metavar="FILE|DIR|-",
    help="Where to write it (default: its base name here; '-': stdout, once verified); a FILE's "
    "directory must exist.",
)
@click.option("--expect-digest", help="Fail (exit 3) unless the export's manifest has this digest.")
@common_options
@command
def fetch(
    ctx: Context, reference: str, path: str, output: str | None, expect_digest: str | None, **_: Any
) -> tuple[FetchResult, str | None]:
    """Write the file PATH of the export REFERENCE, verified, without pulling the rest.

    The manifest, annotations and export.json are checked as by pull; then only that file is
    downloaded, and written only if its digest and size match export.json.
    """
    from stella_oci.errors import InvalidInputError
    from stella_oci.verbs.fetch import fetch as fetch_api

    if output == "-" and ctx.fmt != "text":
        raise InvalidInputError("-o - writes the file to stdout: it cannot also carry --format output")
    r = fetch_api(reference, path, output, expect_digest=expect_digest, run=ctx.run("fetch"))
    if r.output == "-":
        return r, None
    return r, f"{r.output}  ({r.path}, {human_size(r.layer.size)}, {r.layer.digest})"


# ----------------------------------------------------------------------------- login / logout
@click.command(
    epilog=_examples(
        'echo "$TOKEN" | stella-oci login ghcr.io -u "$GITHUB_ACTOR" --password-stdin',
        "stella-oci login harbor.local -u 'robot$ci' --password-stdin < token.txt",
        "stella-oci login localhost:5000 -u ci --registry-config ./docker-config.json < pw",
    )
)
@click.argument("host")
@common_options
@command
def login(ctx: Context, host: str, **_: Any) -> tuple[LoginResult, str]:
    """Check credentials against HOST and store them in the Docker config.

    The password comes from stdin only (never the command line: it would show in ps and the
    shell history). Stored through credHelpers/credsStore when the config names one, else in
    the config's auths (file mode 0600).
    """
    from stella_oci.errors import InvalidInputError
    from stella_oci.verbs.login import login as login_api

    opts = ctx.transport
    if not opts.username:
        raise InvalidInputError(
            "login needs the user name: -u USER",
            hint=f'echo "$PASSWORD" | stella-oci login {host} -u USER --password-stdin',
        )
    password = opts.password
    if password is None:
        if sys.stdin is None or sys.stdin.closed or sys.stdin.isatty():
            raise InvalidInputError(
                "login reads the password from stdin, and stdin is a terminal or closed",
                hint=f'echo "$PASSWORD" | stella-oci login {host} -u {opts.username} --password-stdin',
            )
        password = sys.stdin.readline().rstrip("\r\n")
    r = login_api(host, opts.username, password, transport=opts)
    return r, f"logged in to {r.host} as {r.username} (stored in {r.stored_in})"


@click.command(
    epilog=_examples(
        "stella-oci logout ghcr.io", "stella-oci logout localhost:5000 --registry-config ./cfg.json"
    )
)
@click.argument("host")
@common_options
@command
def logout(ctx: Context, host: str, **_: Any) -> tuple[LogoutResult, str]:
    """Remove the credentials for HOST from the Docker config (and its credential helper)."""
    from stella_oci.verbs.login import logout as logout_api

    r = logout_api(host, transport=ctx.transport)
    if not r.removed_from:
        return r, f"no credentials stored for {r.host}"
    return r, f"logged out of {r.host} (removed from {', '.join(r.removed_from)})"


COMMANDS = [tags, resolve, tag, delete, manifest, fetch, login, logout]
