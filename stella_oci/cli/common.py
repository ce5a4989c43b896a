"""What every command shares: common options, the run context, result rendering and exit codes."""

from __future__ import annotations

import errno
import functools
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from stella_oci.cli import exit_code_help
from stella_oci.errors import LOCAL_ERRNOS, InternalError, InvalidInputError, StellaOciError
from stella_oci.oci.mirrors import load_mirror_config, parse_mirror_args
from stella_oci.output import LineProgress, RichProgress, emit_error, emit_result, progress_for
from stella_oci.transport.options import RetryPolicy, TransportOptions

if TYPE_CHECKING:  # the verbs import pydantic models: imported when a command runs, not for --help
    from stella_oci.verbs.airgap import AirgapOptions
    from stella_oci.verbs.common import RunOptions
    from stella_oci.verbs.pull import ExtraCheck

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODE_HELP = exit_code_help()


def _check_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value in ("text", "json") or "{{" in value:
        return value
    raise click.BadParameter(
        f"{value!r}: give text, json, or a template of the JSON document's fields such as '{{{{.digest}}}}'"
    )


def common_options(func: F) -> F:
    """Options every command takes (registry access, output)."""
    opts = [
        click.option(
            "--format",
            "fmt",
            default="text",
            show_default=True,
            metavar="text|json|TEMPLATE",
            callback=_check_format,
            help="json: one JSON document on stdout, nothing else there (docs/output.md). "
            "A template such as '{{.digest}}' prints those fields of the JSON document.",
        ),
        click.option(
            "--digest-only", is_flag=True, help="Print only the manifest digest (--format '{{.digest}}')."
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
            "--password",
            "-p",
            "password_refused",
            hidden=True,
            expose_value=False,
            callback=_refuse_password_option,
            help="Not taken (use --password-stdin).",
        ),
        click.option(
            "--registry-config",
            type=click.Path(dir_okay=False),
            help="Docker config.json with auths / credsStore / credHelpers.",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 32),
            help="Blobs moved in parallel (default: push 5, 16 when every blob is <= 4 MiB; pull 3, copy 4).",
        ),
        click.option(
            "--registry-mirror",
            multiple=True,
            metavar="SOURCE=MIRROR[,MIRROR...]",
            help="Read SOURCE (host or host/repo prefix) from MIRROR instead (repeatable). Several "
            "mirrors (comma-separated, or the option repeated) are tried in order on connection "
            "failure, 5xx and 404; the output says which one served.",
        ),
        click.option(
            "--mirror-config",
            type=click.Path(dir_okay=False),
            help='JSON file {"mirrors": {"SOURCE": "MIRROR" or ["MIRROR", ...]}}.',
        ),
        click.option(
            "--offline",
            is_flag=True,
            envvar="STELLA_OFFLINE",
            show_envvar=True,
            help="Refuse (exit 5) anything that would contact a registry (also STELLA_OFFLINE=true, "
            "the StellaOps CLI's switch).",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 1000),
            envvar="STELLA_OCI_RETRIES",
            show_envvar=True,
            help=f"Retries of one failed request (connection cut, 408/429/5xx) before exit 10 "
            f"[default: {RetryPolicy().attempts - 1}].",
        ),
        click.option(
            "--retry-max-time",
            type=click.FloatRange(0, 86400),
            envvar="STELLA_OCI_RETRY_MAX_TIME",
            show_envvar=True,
            metavar="SECONDS",
            help=f"Longest time one request may spend retrying before exit 10 "
            f"[default: {RetryPolicy().total_seconds:g}]; raise it for a registry that restarts slowly.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0.1),
            envvar="STELLA_OCI_TIMEOUT",
            default=TransportOptions.timeout,
            show_default=True,
            metavar="SECONDS",
            help="Total deadline of one registry request (redirects included; blob bodies excepted), "
            "then retried (also STELLA_OCI_TIMEOUT).",
        ),
        click.option(
            "--min-speed",
            type=click.FloatRange(min=0),
            envvar="STELLA_OCI_MIN_SPEED",
            default=TransportOptions.min_speed,
            show_default=True,
            metavar="BYTES/S",
            help="Slowest blob transfer accepted, over a 30 s window (STELLA_OCI_SPEED_WINDOW); "
            "slower is aborted and resumed; 0: no minimum (also STELLA_OCI_MIN_SPEED).",
        ),
        click.option(
            "--rate-limit",
            envvar="STELLA_OCI_RATE_LIMIT",
            metavar="N/s",
            help="Send at most N requests per second to each registry host, all transfers together "
            "(as regclient's reqPerSec; N/m per minute), so a big push stays under ghcr.io or "
            "Harbor limits [default: none]. Whatever it is, a 429 from a host makes every "
            "transfer to that host wait out its Retry-After (also STELLA_OCI_RATE_LIMIT).",
        ),
        click.option(
            "--chunk-size",
            envvar="STELLA_OCI_CHUNK_SIZE",
            metavar="SIZE",
            help="Upload blobs larger than SIZE in parts of SIZE (PATCH requests; e.g. 16MiB, "
            "at least 64KiB), for a registry or proxy that limits the size of one request "
            "[default: each blob in one streamed PUT; parts only when the registry asks for them "
            "or refuses the whole blob with 413] (also STELLA_OCI_CHUNK_SIZE).",
        ),
        click.option("--quiet", "-q", is_flag=True, help="No progress, only the result."),
        click.option(
            "--verbose", "-v", is_flag=True, help="Log HTTP exchanges to stderr (secrets and URL query values redacted)."
        ),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def retry_policy(retries: int | None, max_time: float | None) -> RetryPolicy:
    """The RetryPolicy for ``--retries`` / ``--retry-max-time`` (None: the default)."""
    default = RetryPolicy()
    attempts = default.attempts if retries is None else retries + 1
    total = default.total_seconds if max_time is None else max_time
    if retries is not None and max_time is None:
        # more retries than the default need more time than the default: the backoff waits
        # grow to max_delay, so allow for that many waits
        total = max(total, retries * default.max_delay)
    return RetryPolicy(
        attempts=attempts,
        base_delay=default.base_delay,
        max_delay=min(default.max_delay, total) if total > 0 else 0.0,
        total_seconds=total,
    )


def _rate_limit(text: str | None) -> float | None:
    """``--rate-limit N/s`` in requests per second (None: no limit)."""
    if not text:
        return None
    from stella_oci.transport.ratelimit import parse_rate

    return parse_rate(text)


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3}
MIN_CHUNK_SIZE = 64 * 1024


def chunk_size(text: str | None) -> int | None:
    """``--chunk-size SIZE`` in bytes (``16MiB``, ``16M``, ``1048576``; None: not given)."""
    if text is None or not text.strip():
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    unit = _SIZE_UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None or int(m.group(1)) * unit < MIN_CHUNK_SIZE:
        raise InvalidInputError(
            f"--chunk-size {text!r}: expected a size of at least 64KiB, e.g. 16MiB, 64M or 1048576",
            hint="or set STELLA_OCI_CHUNK_SIZE; leave it out to upload each blob in one request",
        )
    return int(m.group(1)) * unit


def _speed_window() -> float:
    """``STELLA_OCI_SPEED_WINDOW`` (seconds, > 0), else the default."""
    raw = os.environ.get("STELLA_OCI_SPEED_WINDOW", "").strip()
    if not raw:
        return TransportOptions.speed_window
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise InvalidInputError(
            f"STELLA_OCI_SPEED_WINDOW={raw!r}: expected a number of seconds between 0 and 3600"
        )
    return value


def _credentials_from(
    username: str | None, password_stdin: bool, command_name: str
) -> tuple[str | None, str | None]:
    """``-u`` / ``--password-stdin`` (and STELLA_OCI_USERNAME / STELLA_OCI_PASSWORD completing
    them): each half without the other says what to do. ``login`` reads its password itself."""
    password = None
    if password_stdin:
        if sys.stdin is None or sys.stdin.closed:
            raise InvalidInputError("--password-stdin given but stdin is closed")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InvalidInputError("--password-stdin given but stdin was empty")
        username = username or os.environ.get("STELLA_OCI_USERNAME") or None
        if username is None:
            raise InvalidInputError(
                "--password-stdin reads a password, but no user name was given",
                hint="add -u USER (for a token: the user name the registry expects with it, e.g. your "
                "GitHub user for ghcr.io, robot$NAME for a Harbor robot), or set STELLA_OCI_USERNAME",
            )
    elif username is not None and command_name != "login":
        password = os.environ.get("STELLA_OCI_PASSWORD") or None
        if password is None:
            raise InvalidInputError(
                f"-u {username} given without a password",
                hint=f'pipe it in: echo "$PASSWORD" | stella-oci {command_name or "COMMAND"} ... -u {username} '
                "--password-stdin, or set STELLA_OCI_PASSWORD (never on the command line)",
            )
    return username, password


def _refuse_password_option(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise click.UsageError(
            "-p/--password is not taken: a password on the command line shows in ps and the shell "
            f'history. Pipe it in: echo "$PASSWORD" | stella-oci {ctx.info_name} ... -u USER '
            "--password-stdin, or set STELLA_OCI_PASSWORD"
        )


class Context:
    def __init__(self, kw: dict[str, Any]) -> None:
        self.fmt: str = kw.pop("fmt")
        if kw.pop("digest_only", False):
            self.fmt = "{{.digest}}"
        self.quiet: bool = kw.pop("quiet")
        verbose: bool = kw.pop("verbose")
        command_name = getattr(click.get_current_context(silent=True), "info_name", "") or ""
        username, password = _credentials_from(kw.pop("username"), kw.pop("password_stdin"), command_name)
        registry_config = kw.pop("registry_config")
        if registry_config and command_name != "login" and not Path(registry_config).expanduser().is_file():
            raise InvalidInputError(
                f"--registry-config {registry_config}: no such file",
                hint="give an existing Docker config.json, or leave the option out to use "
                "$DOCKER_CONFIG/config.json or ~/.docker/config.json (stella-oci login writes one)",
            )
        self.transport = TransportOptions(
            plain_http=kw.pop("plain_http"),
            insecure=kw.pop("insecure"),
            ca_file=kw.pop("ca_file"),
            client_cert=kw.pop("cert_file"),
            client_key=kw.pop("key_file"),
            username=username,
            password=password,
            registry_config=registry_config,
            offline=kw.pop("offline"),
            retry=retry_policy(kw.pop("retries"), kw.pop("retry_max_time")),
            timeout=kw.pop("timeout"),
            min_speed=kw.pop("min_speed"),
            speed_window=_speed_window(),
            rate_limit=_rate_limit(kw.pop("rate_limit")),
            chunk_size=chunk_size(kw.pop("chunk_size")),
        )
        self.concurrency: int | None = kw.pop("concurrency")
        self.mirrors: dict[str, list[str]] = {}
        mirror_config = kw.pop("mirror_config")
        if mirror_config:
            self.mirrors.update(load_mirror_config(Path(mirror_config)))
        self.mirrors.update(parse_mirror_args(kw.pop("registry_mirror")))
        self.progress: RichProgress | LineProgress | None = None
        logging.basicConfig(
            level=logging.DEBUG if verbose else logging.WARNING,
            stream=sys.stderr,
            format="stella-oci: %(message)s",
        )

    def run(self, description: str) -> RunOptions:
        from stella_oci.verbs.common import RunOptions

        self.progress = progress_for(self.fmt, self.quiet, description)
        return RunOptions(
            transport=self.transport,
            concurrency=self.concurrency,
            progress=self.progress,
            mirrors=self.mirrors,
        )

    def close(self, failed: bool = False) -> None:
        if self.progress:
            self.progress.close(failed)


def airgap_options(func: F) -> F:
    """Options of the commands that import or check exports inside an air gap."""
    opts = [
        click.option(
            "--staleness-config",
            type=click.Path(dir_okay=False, path_type=Path),
            help="StalenessConfig JSON: fail (exit 7, STRICT) or warn when the export is too old.",
        ),
        click.option(
            "--time-anchor",
            type=click.Path(dir_okay=False, path_type=Path),
            help="TimeAnchor giving 'now': a signed one (DSSE, verified with --time-anchor-trust-root) or a "
            "plain JSON file, used as unverified (default: the system clock, unverified).",
        ),
        click.option(
            "--time-anchor-trust-root",
            type=click.Path(exists=True, path_type=Path),
            help="X.509 certificate(s) (PEM file or directory) a signed --time-anchor must verify with; "
            "the anchored time must lie in the signing certificate's validity window.",
        ),
        click.option(
            "--require-time-anchor",
            is_flag=True,
            help="Refuse (exit 7) unless 'now' is a verified signed time anchor (as requireTimeAnchor).",
        ),
        click.option("--domain", help="The export's air-gap domain (default: export.json profile.name)."),
        click.option(
            "--ledger",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Import ledger (SQLite). Default: $STELLA_OCI_LEDGER or the user data dir.",
        ),
        click.option(
            "--force-activate",
            is_flag=True,
            help="Import an export older than the newest one imported for its tenant and profile (load: also "
            "a mirrorGeneration not above the last one); needs --force-reason.",
        ),
        click.option(
            "--force-reason",
            metavar="TEXT",
            help="Why --force-activate is used; recorded in the import ledger.",
        ),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def signature_options(func: F) -> F:
    """--trust-root / --require-signature (pull, verify)."""
    opts = [
        click.option(
            "--trust-root",
            type=click.Path(exists=True, path_type=Path),
            help="PEM public key(s) (file or directory) that signatures must verify with, or a Sigstore "
            "trusted_root.json (alone or in that directory) for Sigstore bundles; never fetched.",
        ),
        click.option(
            "--certificate-identity",
            metavar="IDENTITY",
            help="With a Sigstore trusted root: the signer identity (certificate SAN: e-mail or URI) required.",
        ),
        click.option(
            "--certificate-oidc-issuer",
            metavar="URL",
            help="With a Sigstore trusted root: the OIDC issuer required in the signing certificate.",
        ),
        click.option(
            "--require-signature",
            is_flag=True,
            help="Fail (exit 3) unless a signature over export.json (DSSE, or a Sigstore bundle) verifies "
            "with --trust-root.",
        ),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def checks_from(kw: dict[str, Any]) -> list[ExtraCheck]:
    """Pop the signature options; the checks they ask for."""
    trust_root = kw.pop("trust_root", None)
    require = kw.pop("require_signature", False)
    identity = kw.pop("certificate_identity", None)
    issuer = kw.pop("certificate_oidc_issuer", None)
    if trust_root is None and not require and identity is None and issuer is None:
        return []
    from stella_oci.verbs.signatures import signature_check

    return [signature_check(trust_root, require, identity=identity, issuer=issuer)]


def airgap_from(kw: dict[str, Any]) -> AirgapOptions | None:
    """Pop the air-gap options; None when none was given."""
    from stella_oci.verbs.airgap import AirgapOptions

    force, reason = kw.pop("force_activate", False), kw.pop("force_reason", None)
    if force and not (reason or "").strip():
        raise InvalidInputError(
            "--force-activate needs --force-reason TEXT: the reason is recorded in the import ledger",
            hint='e.g. --force-activate --force-reason "roll back to week 46 after a bad feed (ticket 123)"',
        )
    if reason is not None and not force:
        raise InvalidInputError(
            "--force-reason without --force-activate: nothing would be forced",
            hint="add --force-activate, or leave --force-reason out",
        )
    opts = AirgapOptions(
        staleness_config=kw.pop("staleness_config", None),
        time_anchor=kw.pop("time_anchor", None),
        time_anchor_trust_root=kw.pop("time_anchor_trust_root", None),
        require_time_anchor=kw.pop("require_time_anchor", False),
        domain=kw.pop("domain", None),
        ledger=kw.pop("ledger", None),
        force_reason=reason.strip() if force and reason else None,
    )
    return opts if opts != AirgapOptions() else None


def command(func: Callable[..., tuple[Any, str | None]]) -> Callable[..., None]:
    """Wrap a command body: build the context, render the result, map errors to exit codes."""

    @functools.wraps(func)
    def wrapper(**kw: Any) -> None:
        fmt = kw.get("fmt", "text")
        ctx: Context | None = None
        try:
            ctx = Context(kw)
            fmt = ctx.fmt
            result, text = func(ctx, **kw)
            ctx.close()
            emit_result(result, fmt, text)
        except StellaOciError as exc:
            if ctx:
                ctx.close(failed=True)
            emit_error(exc, fmt)
            sys.exit(exc.exit_code)
        except OSError as exc:
            if ctx:
                ctx.close(failed=True)
            if exc.errno not in LOCAL_ERRNOS:
                _internal_error(exc, fmt)
            # The local file system said no (disk full, read-only, permissions): name it.
            emit_error(local_fs_error(exc), fmt)
            sys.exit(2)
        except KeyboardInterrupt:
            if ctx:
                ctx.close(failed=True)
            sys.stderr.write("stella-oci: interrupted\n")
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - reported as an internal error (exit 1), logged with --verbose
            if ctx:
                ctx.close(failed=True)
            _internal_error(exc, fmt)

    return wrapper


def _internal_error(exc: Exception, fmt: str) -> NoReturn:
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.exception("internal error")
    from stella_oci.transport.redact import redact

    err = InternalError(
        f"internal error: {type(exc).__name__}: {redact(str(exc))}",
        hint="run again with --verbose and report it",
    )
    emit_error(err, fmt)
    sys.exit(1)


def local_fs_error(exc: OSError) -> InvalidInputError:
    """Exit 2 for a local file-system refusal that no verb mapped itself (file, cause, fix)."""
    cause = LOCAL_ERRNOS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
    where = f"{exc.filename}: " if exc.filename else ""
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    return InvalidInputError(
        f"{where}{cause}",
        hint="free space there, or write somewhere else" if full else "choose a path you can write",
        details={"errno": exc.errno},
    )
