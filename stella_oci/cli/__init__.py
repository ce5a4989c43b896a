"""The ``stella-oci`` command: a thin shell over the Python API (:mod:`stella_oci.api`).

Every command parses its options into API arguments, calls the API, and renders the result
as text or (``--format json``) one JSON document on stdout. Errors exit with the code of the
exception (CONTRACT section 4); with ``--format json`` they print ``{"error": {...}}``.

Commands live in modules by theme (``transfer``: push, pull, verify, inspect, copy; each lists
its commands in ``COMMANDS``). The top level loads them lazily (click's "lazily loading
subcommands" pattern): this module imports click and :mod:`stella_oci.version` only, and
:data:`LAZY_COMMANDS` names each command's module, attribute and short help, so that
``--version`` and ``--help`` import no command module and ``stella-oci CMD`` (or
``CMD --help``) imports only CMD's. ``tests/test_startup.py`` checks the table against the
real commands (names, modules, short help) and the imports of each case.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

import click

from stella_oci.version import __version__

#: Command name -> (module, attribute, short help). The short help is what click derives from
#: the command's docstring (its first sentence, ``cmd.get_short_help_str(limit=10**6)``); the
#: top-level help shortens it to the terminal's width exactly as click shortens the real one.
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "airgap": (
        "stella_oci.cli.airgap",
        "airgap",
        "Air-gap state: what was imported, and how stale each domain is.",
    ),
    "attach": (
        "stella_oci.cli.referrers",
        "attach",
        "Push FILE as an OCI 1.1 referrer of the manifest REFERENCE names.",
    ),
    "copy": (
        "stella_oci.cli.transfer",
        "copy",
        "Copy an artifact between registries, oci:DIR and oci-archive:FILE, digests unchanged.",
    ),
    "delete": (
        "stella_oci.cli.registry",
        "delete",
        "Delete the manifest REFERENCE names from its registry (by digest; a tag needs --force).",
    ),
    "discover": (
        "stella_oci.cli.referrers",
        "discover",
        "List the referrers (signatures, provenance, ...) of the manifest REFERENCE names.",
    ),
    "fetch": (
        "stella_oci.cli.registry",
        "fetch",
        "Write the file PATH of the export REFERENCE, verified, without pulling the rest.",
    ),
    "have": (
        "stella_oci.cli.archive",
        "have",
        "Write the have-list of a mirror (DEST as given to load: registry host, host/prefix or oci:DIR): "
        "its repositories, tags and blobs, for save --since.",
    ),
    "inspect": (
        "stella_oci.cli.transfer",
        "inspect",
        "Show the manifest, annotations and layers of REFERENCE without downloading layers.",
    ),
    "load": (
        "stella_oci.cli.archive",
        "load",
        "Load the exports of save archives into DEST (registry host, host/prefix or oci:DIR); each lands "
        "at DEST/<its source repository>, verified; a failed one is quarantined (exit 3).",
    ),
    "login": (
        "stella_oci.cli.registry",
        "login",
        "Check credentials against HOST and store them in the Docker config.",
    ),
    "logout": (
        "stella_oci.cli.registry",
        "logout",
        "Remove the credentials for HOST from the Docker config (and its credential helper).",
    ),
    "manifest": (
        "stella_oci.cli.registry",
        "manifest",
        "Print the manifest of REFERENCE: the raw bytes exactly as stored (no newline added), after "
        "checking they hash to the digest (and to the registry's Docker-Content-Digest).",
    ),
    "pull": ("stella_oci.cli.transfer", "pull", "Fetch REFERENCE into --output, verifying everything."),
    "push": (
        "stella_oci.cli.transfer",
        "push",
        "Validate BUNDLE (a directory or .tar/.tar.gz/.tar.zst) and push it to REFERENCE.",
    ),
    "resolve": ("stella_oci.cli.registry", "resolve", "Print REFERENCE pinned by digest: host/repo@sha256:..."),
    "save": (
        "stella_oci.cli.archive",
        "save",
        "Save many exports (SRC: a reference, or a repository with --tags/--latest/--all-tags) into one "
        "oci-archive with an inventory and checksums; shared blobs are stored once.",
    ),
    "tag": (
        "stella_oci.cli.registry",
        "tag",
        "Point NEWTAG... at the manifest REFERENCE names, in the same repository.",
    ),
    "tags": (
        "stella_oci.cli.registry",
        "tags",
        "List the tags of REPOSITORY (host/repo, oci:DIR or oci-archive:FILE), one per line.",
    ),
    "time-anchor": (
        "stella_oci.cli.airgap",
        "time_anchor",
        'Signed time: write a signed time anchor, or check one (docs/airgap.md, "Signed time").',
    ),
    "verify": (
        "stella_oci.cli.transfer",
        "verify",
        "Run every check of pull on TARGET (a reference or bundle dir), writing nothing.",
    ),
}


def exit_code_help() -> str:
    """The "Exit codes:" epilog of every command's help (imports :mod:`stella_oci.errors`)."""
    from stella_oci.errors import EXIT_CODES

    return "\b\nExit codes:\n" + "\n".join(f"  {code:>2}  {text}" for code, text in EXIT_CODES.items())


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, from a table of name -> module.

    ``list_commands``, the help listing, shell completion of command names and the "Did you
    mean" of an unknown command read the table; only resolving a command (to run it, show its
    help or complete its options) imports its module.
    """

    def __init__(self, *args: Any, lazy_commands: dict[str, tuple[str, str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy_commands:
            return super().get_command(ctx, cmd_name)
        module_name, attr, _ = self.lazy_commands[cmd_name]
        # __import__, not importlib.import_module: `python -X importtime` lists what it imports
        module = __import__(module_name, fromlist=[attr])
        cmd = getattr(module, attr)
        if not isinstance(cmd, click.Command) or cmd.name != cmd_name:
            raise TypeError(f"{module_name}.{attr} is not the click command {cmd_name!r} (LAZY_COMMANDS)")
        self.commands[cmd_name] = cmd  # loaded once
        return cmd

    def _short_help(self, name: str, limit: int) -> str | None:
        """``name``'s short help for ``limit`` columns, without importing it (None: hidden)."""
        cmd = self.commands.get(name)
        if cmd is None:  # not loaded: the same text click would derive from the real command
            cmd = click.Command(name, help=self.lazy_commands[name][2])
        return None if cmd.hidden else cmd.get_short_help_str(limit)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, text) for name in names if (text := self._short_help(name, limit)) is not None]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        results: list[Any] = []
        for name in self.list_commands(ctx):
            if name.startswith(incomplete) and (text := self._short_help(name, 45)) is not None:
                results.append(CompletionItem(name, help=text))
        results.extend(click.Command.shell_complete(self, ctx, incomplete))  # options, as click.Group does
        return results

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            # click suggests from self.commands (the loaded ones): suggest from every name
            no_such: Any = getattr(click.exceptions, "NoSuchCommand", None)
            if no_such is not None and isinstance(exc, no_such):
                raise no_such(exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx) from None
            raise


class _Main(LazyGroup):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog is None:  # built for a help text only (stella_oci.errors is not needed otherwise)
            self.epilog = exit_code_help()
        super().format_epilog(ctx, formatter)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # a command is about to run (after --version / --help, before its module is imported)
        if _signals_fmt is not None and not ctx.resilient_parsing:  # not for shell completion
            from stella_oci import interrupts

            interrupts.install(_signals_fmt)  # SIGINT/SIGTERM/SIGHUP: remove partial files, exit 130/143/129
        return super().resolve_command(ctx, args)


#: The --format of this process's command line, set by :func:`run` (the CLI process installs the
#: signal handlers; CliRunner and API callers do not).
_signals_fmt: str | None = None


@click.group(
    cls=_Main,
    lazy_commands=LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
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


@main.command(name="help")
@click.argument("command", nargs=-1, metavar="[COMMAND]...")
@click.pass_context
def help_(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Print the help of COMMAND (the same text as COMMAND --help), or of stella-oci.

    \b
    Examples:
      stella-oci help push
      stella-oci help airgap status
    """
    target = ctx.find_root()
    for i, name in enumerate(command):
        group = target.command
        if not isinstance(group, click.Group):
            parent = " ".join(["stella-oci", *command[:i]])
            raise click.UsageError(f"{parent} has no subcommands (no {name!r})", ctx=target)
        _, cmd, _ = group.resolve_command(target, [name])  # (an unknown name: "No such command", exit 2)
        assert cmd is not None  # (resolve_command raises for an unknown name)
        # a context as `CMD --help` gets it (its own settings, the parent's), nothing parsed
        target = click.Context(cmd, info_name=name, parent=target, **cmd.context_settings)
    click.echo(target.get_help(), color=target.color)


def run() -> None:
    """Entry point with usage errors mapped to exit 2 (and JSON when --format json was asked)."""
    try:
        _run()
    finally:
        # The process ends next. Interpreter shutdown runs full garbage collections over every
        # object left (the imported modules: pydantic, jsonschema, requests ...), 0.1-0.3 s of
        # a small push's wall time; frozen objects are not scanned (0.01 s). Nothing is lost:
        # finalizers, atexit handlers and flushing run as before.
        gc.freeze()


def _run() -> None:
    global _signals_fmt
    fmt = _signals_fmt = "json" if _wants_json(sys.argv[1:]) else "text"
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.stderr.write("stella-oci: aborted\n")
        sys.exit(130)
    except click.UsageError as exc:
        from stella_oci.errors import InvalidInputError
        from stella_oci.output import emit_error

        err = InvalidInputError(exc.format_message(), hint=f"see: {_command_path(exc)} --help")
        emit_error(err, fmt)
        sys.exit(2)
    except click.ClickException as exc:
        from stella_oci.errors import InvalidInputError
        from stella_oci.output import emit_error

        emit_error(InvalidInputError(exc.format_message()), fmt)
        sys.exit(2)


def _wants_json(argv: list[str]) -> bool:
    for i, a in enumerate(argv):
        if a == "--format=json" or (a == "--format" and i + 1 < len(argv) and argv[i + 1] == "json"):
            return True
    return False


def _command_path(exc: click.UsageError) -> str:
    """The command the usage error is about, as click resolved it ("stella-oci airgap status"),
    never a guess from argv: an unknown command or an option's value is not a command."""
    names: list[str] = []
    ctx = exc.ctx
    while ctx is not None and ctx.parent is not None:  # the root's name is how python was run
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["stella-oci", *reversed(names)])
