"""The ``stella-oci`` command: a thin shell over the Python API (:mod:`stella_oci.api`).

Every command parses its options into API arguments, calls the API, and renders the result
as text or (``--format json``) one JSON document on stdout. Errors exit with the code of the
exception (CONTRACT section 4); with ``--format json`` they print ``{"error": {...}}``.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from stella_oci import __version__, api
from stella_oci.errors import EXIT_CODES, InternalError, InvalidInputError, StellaOciError
from stella_oci.output import RichProgress, emit_error, emit_result, human_size, progress_wanted
from stella_oci.results import CopyResult, InspectResult, PushResult, VerifyResult
from stella_oci.transport.options import TransportOptions
from stella_oci.verbs.common import RunOptions

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODE_HELP = "\b\nExit codes:\n" + "\n".join(f"  {code:>2}  {text}" for code, text in EXIT_CODES.items())


def common_options(func: F) -> F:
    """Options every command takes (registry access, output)."""
    opts = [
        click.option(
            "--format",
            "fmt",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="json: one JSON document on stdout, nothing else there.",
        ),
        click.option(
            "--plain-http", is_flag=True, help="Speak HTTP, not HTTPS (automatic for loopback registries)."
        ),
        click.option("--insecure", is_flag=True, help="HTTPS without certificate verification."),
        click.option(
            "--ca-file", type=click.Path(dir_okay=False), help="PEM bundle of CAs to trust for the registry."
        ),
        click.option("--cert-file", type=click.Path(dir_okay=False), help="Client certificate (mTLS), PEM."),
        click.option("--key-file", type=click.Path(dir_okay=False), help="Client key (mTLS), PEM."),
        click.option("--username", "-u", help="Registry user name (also STELLA_OCI_USERNAME)."),
        click.option(
            "--password-stdin",
            is_flag=True,
            help="Read the password or token from stdin (also STELLA_OCI_PASSWORD).",
        ),
        click.option(
            "--registry-config",
            type=click.Path(dir_okay=False),
            help="Docker config.json with auths / credsStore / credHelpers.",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 32),
            help="Blobs moved in parallel (default: push 5, pull 3, copy 4).",
        ),
        click.option(
            "--offline", is_flag=True, help="Refuse (exit 5) anything that would contact a registry."
        ),
        click.option("--quiet", "-q", is_flag=True, help="No progress, only the result."),
        click.option(
            "--verbose", "-v", is_flag=True, help="Log HTTP exchanges (secrets redacted) to stderr."
        ),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


class Context:
    def __init__(self, kw: dict[str, Any]) -> None:
        self.fmt: str = kw.pop("fmt")
        self.quiet: bool = kw.pop("quiet")
        verbose: bool = kw.pop("verbose")
        password = None
        if kw.pop("password_stdin"):
            if sys.stdin is None or sys.stdin.closed:
                raise InvalidInputError("--password-stdin given but stdin is closed")
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise InvalidInputError("--password-stdin given but stdin was empty")
        self.transport = TransportOptions(
            plain_http=kw.pop("plain_http"),
            insecure=kw.pop("insecure"),
            ca_file=kw.pop("ca_file"),
            client_cert=kw.pop("cert_file"),
            client_key=kw.pop("key_file"),
            username=kw.pop("username"),
            password=password,
            registry_config=kw.pop("registry_config"),
            offline=kw.pop("offline"),
        )
        self.concurrency: int | None = kw.pop("concurrency")
        self.progress: RichProgress | None = None
        logging.basicConfig(
            level=logging.DEBUG if verbose else logging.WARNING,
            stream=sys.stderr,
            format="stella-oci: %(message)s",
        )

    def run(self, description: str) -> RunOptions:
        if progress_wanted(self.fmt, self.quiet):
            self.progress = RichProgress(description)
        return RunOptions(transport=self.transport, concurrency=self.concurrency, progress=self.progress)

    def close(self) -> None:
        if self.progress:
            self.progress.close()


def command(func: Callable[..., tuple[Any, str]]) -> Callable[..., None]:
    """Wrap a command body: build the context, render the result, map errors to exit codes."""

    @functools.wraps(func)
    def wrapper(**kw: Any) -> None:
        fmt = kw.get("fmt", "text")
        ctx: Context | None = None
        try:
            ctx = Context(kw)
            result, text = func(ctx, **kw)
            ctx.close()
            emit_result(result, fmt, text)
        except StellaOciError as exc:
            if ctx:
                ctx.close()
            emit_error(exc, fmt)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            if ctx:
                ctx.close()
            sys.stderr.write("stella-oci: interrupted\n")
            sys.exit(130)
        except Exception as exc:
            if ctx:
                ctx.close()
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                logging.exception("internal error")
            from stella_oci.transport.redact import redact

            err = InternalError(
                f"internal error: {type(exc).__name__}: {redact(str(exc))}",
                hint="run again with --verbose and report it",
            )
            emit_error(err, fmt)
            sys.exit(1)

    return wrapper


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, epilog=EXIT_CODE_HELP
)
@click.version_option(__version__, prog_name="stella-oci")
def main() -> None:
    """Push, pull and verify StellaOps export bundles as OCI artifacts.

    \b
    Quick examples:
      stella-oci push ./export localhost:5000/stellaops/exports:v1
      stella-oci pull localhost:5000/stellaops/exports:v1 --output ./got
      stella-oci verify localhost:5000/stellaops/exports@sha256:...
      stella-oci inspect ghcr.io/acme/exports:2026-11-20
      stella-oci copy ghcr.io/acme/exports:v1 oci-archive:./exports.tar:v1
    """


# ----------------------------------------------------------------------------- push
@main.command(
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
    **_: Any,
) -> tuple[PushResult, str]:
    """Validate BUNDLE (a directory or .tar/.tar.gz/.tar.zst) and push it to REFERENCE.

    Prints the reference with its digest. Nothing is sent unless export.json validates, every
    listed file has the stated digest and size, every path is safe and no file is unlisted.
    """
    result = api.push(
        bundle,
        reference,
        tags=tags,
        annotations=annotations,
        provenance_ref=provenance_ref,
        allow_unlisted=allow_unlisted,
        run=ctx.run("push"),
    )
    t = result.transfer
    lines = [result.reference]
    if not ctx.quiet:
        lines += [
            f"  tags:            {', '.join(result.tags)}",
            f"  export:          {result.export_id} ({result.profile})",
            f"  manifest-digest: {result.manifest_digest}",
            f"  layers:          {len(result.layers)} ({human_size(sum(layer.size for layer in result.layers))}); "
            f"sent {t.uploaded}, already there {t.skipped}, mounted {t.mounted}",
        ]
        if result.ignored:
            lines.append(f"  left behind:     {', '.join(result.ignored)}")
    return result, "\n".join(lines)


# ----------------------------------------------------------------------------- pull / verify
def _verify_text(result: VerifyResult, quiet: bool, verb: str) -> str:
    head = f"{verb} {result.reference}" + (f" -> {result.output}" if result.output else "")
    if quiet:
        return head
    lines = [
        head,
        f"  export:          {result.export_id} ({result.profile}, tenant {result.tenant}, generated {result.generated_at})",
        f"  manifest-digest: {result.manifest_digest}",
        f"  layers:          {len(result.layers)} ({human_size(sum(layer.size for layer in result.layers))})",
        "  checked:         " + "; ".join(result.checks),
    ]
    return "\n".join(lines)


@main.command(
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
@common_options
@command
def pull(
    ctx: Context, reference: str, output: Path, expect_digest: str | None, **_: Any
) -> tuple[VerifyResult, str]:
    """Fetch REFERENCE into --output and verify everything (CONTRACT section 5).

    A failed check leaves nothing at --output.
    """
    result = api.pull(reference, output, expect_digest=expect_digest, run=ctx.run("pull"))
    return result, _verify_text(result, ctx.quiet, "pulled")


@main.command(
    epilog="\b\nExamples:\n"
    "  stella-oci verify localhost:5000/stellaops/mirror:2026-11-20\n"
    "  stella-oci verify ./pulled-bundle --expect-digest sha256:4f...\n\n" + EXIT_CODE_HELP
)
@click.argument("target")
@click.option("--expect-digest", help="Fail (exit 3) unless the manifest has this sha256 digest.")
@common_options
@command
def verify(ctx: Context, target: str, expect_digest: str | None, **_: Any) -> tuple[VerifyResult, str]:
    """Run every check of pull on TARGET (a reference or a bundle directory), writing nothing."""
    result = api.verify(target, expect_digest=expect_digest, run=ctx.run("verify"))
    return result, _verify_text(result, ctx.quiet, "verified")


@main.command(
    epilog="\b\nExamples:\n"
    "  stella-oci inspect localhost:5000/stellaops/mirror:2026-11-20\n"
    "  stella-oci inspect --format json ghcr.io/acme/exports:v1 | jq .annotations\n\n" + EXIT_CODE_HELP
)
@click.argument("reference")
@common_options
@command
def inspect(ctx: Context, reference: str, **_: Any) -> tuple[InspectResult, str]:
    """Show the manifest, annotations and layers of REFERENCE without downloading layers."""
    r = api.inspect(reference, run=ctx.run("inspect"))
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


@main.command(
    epilog="\b\nExamples:\n"
    "  stella-oci copy ghcr.io/acme/exports:v1 oci-archive:./exports-v1.tar:v1\n"
    "  stella-oci copy oci-archive:./exports-v1.tar:v1 mirror.local:5000/acme/exports:v1\n"
    "  stella-oci copy localhost:5000/a/b:v1 oci:./layout:v1\n\n" + EXIT_CODE_HELP
)
@click.argument("source")
@click.argument("destination")
@click.option("--no-referrers", is_flag=True, help="Do not copy attached signatures and provenance.")
@common_options
@command
def copy(ctx: Context, source: str, destination: str, no_referrers: bool, **_: Any) -> tuple[CopyResult, str]:
    """Copy an artifact between registries, oci:DIR and oci-archive:FILE, digests unchanged."""
    r = api.copy(source, destination, referrers=not no_referrers, run=ctx.run("copy"))
    t = r.transfer
    text = (
        f"{r.destination}\n  from {r.source}; blobs sent {t.uploaded} ({human_size(t.bytes)}), "
        f"already there {t.skipped}, mounted {t.mounted}; referrers {r.referrers}"
    )
    return r, text


def run() -> None:
    """Entry point with usage errors mapped to exit 2 (and JSON when --format json was asked)."""
    fmt = "json" if _wants_json(sys.argv[1:]) else "text"
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.stderr.write("stella-oci: aborted\n")
        sys.exit(130)
    except click.UsageError as exc:
        err = InvalidInputError(exc.format_message(), hint=f"see: stella-oci {_subcommand()} --help")
        emit_error(err, fmt)
        sys.exit(2)
    except click.ClickException as exc:
        emit_error(InvalidInputError(exc.format_message()), fmt)
        sys.exit(2)


def _wants_json(argv: list[str]) -> bool:
    for i, a in enumerate(argv):
        if a == "--format=json" or (a == "--format" and i + 1 < len(argv) and argv[i + 1] == "json"):
            return True
    return False


def _subcommand() -> str:
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    return args[0] if args else ""
