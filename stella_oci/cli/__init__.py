"""The ``stella-oci`` command: a thin shell over the Python API (:mod:`stella_oci.api`).

Every command parses its options into API arguments, calls the API, and renders the result
as text or (``--format json``) one JSON document on stdout. Errors exit with the code of the
exception (CONTRACT section 4); with ``--format json`` they print ``{"error": {...}}``.

Commands live in modules by theme (``transfer``: push, pull, verify, inspect, copy) and are
registered on :data:`main` here.
"""

from __future__ import annotations

import sys

import click

from stella_oci import __version__, interrupts
from stella_oci.cli.common import EXIT_CODE_HELP
from stella_oci.errors import InvalidInputError
from stella_oci.output import emit_error


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODE_HELP,
    invoke_without_command=True,
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
      stella-oci tags ghcr.io/acme/exports --sort created
    """
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is None:  # `stella-oci` alone: the help, exit 0
        click.echo(ctx.get_help())


@main.command(name="version")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def version(fmt: str) -> None:
    """Print the version (as --version does)."""
    if fmt == "json":
        from stella_oci.output import emit_json

        emit_json({"version": __version__})
    else:
        click.echo(f"stella-oci, version {__version__}")


#: Modules holding commands; each lists its commands in ``COMMANDS``.
COMMAND_MODULES = ("transfer", "referrers", "registry", "airgap", "archive")


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        module = importlib.import_module(f"stella_oci.cli.{name}")
        for cmd in module.COMMANDS:
            main.add_command(cmd)


_register()


def run() -> None:
    """Entry point with usage errors mapped to exit 2 (and JSON when --format json was asked)."""
    fmt = "json" if _wants_json(sys.argv[1:]) else "text"
    interrupts.install(fmt)  # SIGINT/SIGTERM/SIGHUP: remove partial files, exit 130/143/129 at once
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
