"""``stella-oci airgap ...``: the state of the import ledger inside a disconnected site."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stella_oci.cli.common import EXIT_CODE_HELP
from stella_oci.errors import InvalidInputError, StalenessError, StellaOciError
from stella_oci.output import emit_error, emit_json

if TYPE_CHECKING:
    from stella_oci.airgap.timeanchor import Clock


def _existing_ledger(ledger: Path | None) -> Path | None:
    """The ledger a read-only command (status, history) reads. One named by --ledger or
    $STELLA_OCI_LEDGER must exist: before, a mistyped path was created as an empty ledger and
    reported 'no imports recorded', exit 0 (a monitoring job saw a healthy, empty site). The
    default ledger of a machine that never imported may be absent: it is read as empty, and
    nothing is created (status, history and have open the ledger with Ledger.read_only)."""
    import os

    from stella_oci.airgap.ledger import LEDGER_ENV

    env = os.environ.get(LEDGER_ENV)
    path, where = (ledger, "--ledger") if ledger else (Path(env).expanduser(), LEDGER_ENV) if env else (None, "")
    if path is not None and not path.exists():
        raise InvalidInputError(
            f"import ledger {path} ({where}): no such file",
            hint="give the ledger that pull, copy or load wrote (their --ledger, or STELLA_OCI_LEDGER); "
            "leave both out for this user's default ledger",
        )
    return ledger


@click.group()
def airgap() -> None:
    """Air-gap state: what was imported, and how stale each domain is."""


@airgap.command(
    epilog="\b\nExamples:\n"
    "  stella-oci airgap status --staleness-config staleness.json\n"
    "  stella-oci airgap status --format prometheus > /var/lib/node_exporter/stella.prom\n"
    "  stella-oci airgap status --domain mirror-full --format json   # exit 7 if STRICT and stale\n\n"
    + EXIT_CODE_HELP
)
@click.option(
    "--staleness-config", type=click.Path(dir_okay=False, path_type=Path), help="StalenessConfig JSON."
)
@click.option(
    "--time-anchor",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TimeAnchor for 'now': signed (verified with --time-anchor-trust-root) or plain (unverified).",
)
@click.option(
    "--time-anchor-trust-root",
    type=click.Path(exists=True, path_type=Path),
    help="X.509 certificate(s) a signed --time-anchor must verify with (docs/airgap.md, signed time).",
)
@click.option(
    "--require-time-anchor", is_flag=True, help="Refuse (exit 7) unless 'now' is a verified signed time anchor."
)
@click.option("--ledger", type=click.Path(dir_okay=False, path_type=Path), help="Import ledger (SQLite).")
@click.option("--tenant", help="Only this tenant's imports.")
@click.option("--domain", help="Check one domain: ERR_AIRGAP_NO_BUNDLE / WARN_AIRGAP_NO_RECENT_IMPORT.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "prometheus"]), default="text", show_default=True
)
def status(
    staleness_config: Path | None,
    time_anchor: Path | None,
    time_anchor_trust_root: Path | None,
    require_time_anchor: bool,
    ledger: Path | None,
    tenant: str | None,
    domain: str | None,
    fmt: str,
) -> None:
    """Print StalenessMetrics for every domain in the import ledger (or check one domain)."""
    from stella_oci.airgap import Ledger, StalenessConfig, load_staleness_config, render_prometheus
    from stella_oci.airgap.timeanchor import resolve_clock

    try:
        config = load_staleness_config(staleness_config) if staleness_config else StalenessConfig()
        require = (
            "--require-time-anchor"
            if require_time_anchor
            else f"requireTimeAnchor in {staleness_config}" if config.requireTimeAnchor else None
        )
        clock = resolve_clock(
            time_anchor,
            time_anchor_trust_root,
            now=datetime.now(timezone.utc).replace(microsecond=0),
            require=require,
        )
        anchor = clock.anchor if time_anchor else None
        now = clock.anchor.timestamp
        with Ledger.read_only(_existing_ledger(ledger)) as db:
            if domain:
                outcome = db.check_domain(domain, config, now, anchor=anchor, tenant=tenant)
                _print_domain(outcome.result, outcome.text_report() + _clock_line(clock), fmt, clock.to_json())
                if not outcome.passed and config.enforcementMode == "STRICT":
                    sys.exit(StalenessError.exit_code)
                return
            metrics = db.metrics(config, now, tenant, anchor=anchor)
    except StellaOciError as exc:
        emit_error(exc, "json" if fmt == "json" else "text")
        sys.exit(exc.exit_code)
    if fmt == "json":
        emit_json({**metrics, "clock": clock.to_json()})
    elif fmt == "prometheus":
        sys.stdout.write(render_prometheus(metrics, config=config))
        source = clock.source
        sys.stdout.write(
            "# HELP stella_oci_airgap_clock_verified 1 when 'now' is a verified signed time anchor.\n"
            "# TYPE stella_oci_airgap_clock_verified gauge\n"
            f'stella_oci_airgap_clock_verified{{source="{source}"}} {int(clock.verified)}\n'
        )
    else:
        sys.stdout.write(_metrics_text(metrics) + _clock_line(clock) + "\n")


def _clock_line(clock: Clock) -> str:
    """Which 'now' the status was computed at, and whether it is verified."""
    return "\nclock: " + clock.describe()


@airgap.command(
    epilog="\b\nExamples:\n"
    "  stella-oci airgap history --ledger ./ledger.sqlite3\n"
    "  stella-oci airgap history --forced --format json   # every forced activation, with its reason\n\n"
    + EXIT_CODE_HELP
)
@click.option("--ledger", type=click.Path(dir_okay=False, path_type=Path), help="Import ledger (SQLite).")
@click.option("--tenant", help="Only this tenant's imports.")
@click.option("--forced", is_flag=True, help="Only what --force-activate let in.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def history(ledger: Path | None, tenant: str | None, forced: bool, fmt: str) -> None:
    """List the ledger: generation activations (load) and imports, oldest first, with every
    --force-reason."""
    from stella_oci.airgap import HistoryResult, Ledger

    try:
        with Ledger.read_only(_existing_ledger(ledger)) as db:
            generations = [g for g in db.generations() if g.forced_reason or not forced]
            imports = [i for i in db.imports(tenant=tenant) if i.forced_reason or not forced]
    except StellaOciError as exc:
        emit_error(exc, fmt)
        sys.exit(exc.exit_code)
    if fmt == "json":
        emit_json(HistoryResult(generations=generations, imports=imports).to_json())
        return
    lines = ["generations:"] if generations else ["generations: none activated"]
    for g in generations:
        lines.append(
            f"  {g.activated_at:%Y-%m-%dT%H:%M:%SZ}  {g.origin} -> {g.destination}  mirrorGeneration "
            f"{g.generation} (before: {g.previous_generation if g.previous_generation is not None else '-'})  "
            f"{g.archive_name or g.archive}" + (f"  FORCED: {g.forced_reason}" if g.forced_reason else "")
        )
    lines.append("imports:" if imports else "imports: none recorded")
    for i in imports:
        lines.append(
            f"  {i.imported_at:%Y-%m-%dT%H:%M:%SZ}  {i.export_id}  {i.tenant}/{i.profile}/{i.profile_name}  "
            f"generatedAt {i.generated_at:%Y-%m-%dT%H:%M:%SZ}  {i.reference or '-'}"
            + (f"  FORCED: {i.forced_reason}" if i.forced_reason else "")
        )
    sys.stdout.write("\n".join(lines) + "\n")


def _print_domain(result: dict[str, Any], text: str, fmt: str, clock: dict[str, Any]) -> None:
    if fmt == "json":
        emit_json({"staleness": result, "clock": clock})
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


def _metrics_text(metrics: dict[str, Any]) -> str:
    rows = metrics.get("domainMetrics") or []
    if not rows:
        return "no imports recorded in the ledger"
    lines = [
        f"{'domain':<28} {'staleness':>12} {'% of limit':>10} {'bundles':>7}  last import           state"
    ]
    for m in rows:
        days = m["stalenessSeconds"] / 86400
        pct = m.get("percentOfThreshold")
        state = "STALE" if m.get("isStale") else "ok"
        lines.append(
            f"{m['domainId']:<28} {days:>10.1f} d {(f'{pct:.0f}%' if pct is not None else '-'):>10} "
            f"{m.get('bundleCount', 0):>7}  {m['lastImportAt']:<21} {state}"
        )
    agg = metrics.get("aggregates") or {}
    lines.append(
        f"{agg.get('totalDomains', len(rows))} domain(s): {agg.get('healthyDomains', 0)} healthy, "
        f"{agg.get('warningDomains', 0)} warning, {agg.get('staleDomains', 0)} stale"
    )
    return "\n".join(lines)


@click.group("time-anchor")
def time_anchor() -> None:
    """Signed time: write a signed time anchor, or check one (docs/airgap.md, "Signed time")."""


def _run(fmt: str, body: Any) -> None:
    from stella_oci.output import emit_result

    try:
        result, text = body()
    except StellaOciError as exc:
        emit_error(exc, fmt)
        sys.exit(exc.exit_code)
    emit_result(result, fmt, text)


@time_anchor.command(
    "sign",
    epilog="\b\nExamples:\n"
    "  stella-oci time-anchor sign --key time.key --anchor-type NTP --source ntp.corp -o anchor.dsse.json\n"
    "  stella-oci time-anchor sign --key time.key --timestamp 2026-11-24T12:00:00Z -o anchor.dsse.json\n\n"
    + EXIT_CODE_HELP,
)
@click.option(
    "--key", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PEM private key to sign with."
)
@click.option(
    "--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Envelope to write."
)
@click.option("--anchor", "anchor_file", type=click.Path(dir_okay=False, path_type=Path), help="Sign this TimeAnchor JSON.")
@click.option("--timestamp", help="The anchored time, RFC 3339 (default: this host's clock now).")
@click.option(
    "--anchor-type",
    type=click.Choice(["NTP", "ROUGHTIME", "HARDWARE_CLOCK", "ATTESTATION_TSA", "MANUAL"]),
    default="MANUAL",
    show_default=True,
)
@click.option("--source", help="Where the time came from (e.g. the NTP server).")
@click.option("--uncertainty", type=click.IntRange(min=0), help="Uncertainty in milliseconds.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def sign(
    key: Path,
    output: Path,
    anchor_file: Path | None,
    timestamp: str | None,
    anchor_type: str,
    source: str | None,
    uncertainty: int | None,
    fmt: str,
) -> None:
    """Write a DSSE-signed TimeAnchor (payloadType application/vnd.stellaops.time-anchor.v1+json)."""

    def body() -> tuple[Any, str]:
        from stella_oci.airgap.models import parse_rfc3339
        from stella_oci.errors import InvalidInputError
        from stella_oci.verbs.timeanchor import sign_anchor

        try:
            when = parse_rfc3339(timestamp, field="--timestamp") if timestamp else None
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        r = sign_anchor(
            key, output, anchor_file=anchor_file, timestamp=when, anchor_type=anchor_type,  # type: ignore[arg-type]
            source=source, uncertainty=uncertainty,
        )
        return r, f"signed time anchor {r.anchor.timestamp} written to {r.output} (key {r.key_id})"

    _run(fmt, body)


@time_anchor.command(
    "verify",
    epilog="\b\nExamples:\n"
    "  stella-oci time-anchor verify anchor.dsse.json --time-anchor-trust-root time-root.crt\n\n"
    + EXIT_CODE_HELP,
)
@click.argument("anchor_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--time-anchor-trust-root",
    "trust_root",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="X.509 certificate(s) (PEM file or directory) the anchor must verify with.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_anchor_command(anchor_file: Path, trust_root: Path, fmt: str) -> None:
    """Check a signed time anchor as pull, copy and load would (exit 3 when it does not verify)."""

    def body() -> tuple[Any, str]:
        from stella_oci.verbs.timeanchor import verify_anchor

        r = verify_anchor(anchor_file, trust_root)
        return r, f"time anchor {anchor_file}: {r.clock.timestamp}, verified with trust-root key {r.clock.key_name}"

    _run(fmt, body)


COMMANDS = [airgap, time_anchor]
