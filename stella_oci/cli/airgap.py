"""``stella-oci airgap ...``: the state of the import ledger inside a disconnected site."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from stella_oci.cli.common import EXIT_CODE_HELP
from stella_oci.errors import StalenessError, StellaOciError
from stella_oci.output import emit_error, emit_json


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
    "--time-anchor", type=click.Path(dir_okay=False, path_type=Path), help="TimeAnchor JSON for 'now'."
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
    ledger: Path | None,
    tenant: str | None,
    domain: str | None,
    fmt: str,
) -> None:
    """Print StalenessMetrics for every domain in the import ledger (or check one domain)."""
    from stella_oci.airgap import (
        Ledger,
        StalenessConfig,
        load_staleness_config,
        load_time_anchor,
        render_prometheus,
    )

    try:
        config = load_staleness_config(staleness_config) if staleness_config else StalenessConfig()
        anchor = load_time_anchor(time_anchor) if time_anchor else None
        now = anchor.timestamp if anchor else datetime.now(timezone.utc).replace(microsecond=0)
        with Ledger(ledger) as db:
            if domain:
                outcome = db.check_domain(domain, config, now, anchor=anchor, tenant=tenant)
                _print_domain(outcome.result, outcome.text_report(), fmt)
                if not outcome.passed and config.enforcementMode == "STRICT":
                    sys.exit(StalenessError.exit_code)
                return
            metrics = db.metrics(config, now, tenant, anchor=anchor)
    except StellaOciError as exc:
        emit_error(exc, "json" if fmt == "json" else "text")
        sys.exit(exc.exit_code)
    if fmt == "json":
        emit_json(metrics)
    elif fmt == "prometheus":
        sys.stdout.write(render_prometheus(metrics, config=config))
    else:
        sys.stdout.write(_metrics_text(metrics) + "\n")


def _print_domain(result: dict[str, Any], text: str, fmt: str) -> None:
    if fmt == "json":
        emit_json({"staleness": result})
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


COMMANDS = [airgap]
