"""Air-gap support: staleness evaluation, BundleProvenance records and the import ledger.

Pure logic and SQLite; nothing here speaks HTTP. See docs/airgap.md for the rules.
"""

from stella_oci.airgap.generations import (
    ERR_AIRGAP_EXPORT_ROLLBACK,
    ERR_AIRGAP_GENERATION_REPLAY,
    check_rollback,
    decide_generation,
)
from stella_oci.airgap.ledger import (
    ERR_EXPORT_BASE_MISSING,
    GenerationRecord,
    HistoryResult,
    ImportRecord,
    Ledger,
    check_delta,
    default_ledger_path,
)
from stella_oci.airgap.metrics import build_metrics, render_prometheus
from stella_oci.airgap.models import (
    EXPORT_CENTER_NAMESPACE,
    DomainSummary,
    NotificationThreshold,
    StalenessConfig,
    TimeAnchor,
    export_domain,
    export_uuid,
    format_rfc3339,
    load_staleness_config,
    load_time_anchor,
    parse_rfc3339,
)
from stella_oci.airgap.provenance import build_provenance
from stella_oci.airgap.staleness import (
    DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    DEFAULT_MAX_UNCERTAINTY_MS,
    StalenessOutcome,
    evaluate_domain,
    evaluate_staleness,
    system_anchor,
)

__all__ = [
    "DEFAULT_MAX_CLOCK_SKEW_SECONDS",
    "DEFAULT_MAX_UNCERTAINTY_MS",
    "ERR_AIRGAP_EXPORT_ROLLBACK",
    "ERR_AIRGAP_GENERATION_REPLAY",
    "ERR_EXPORT_BASE_MISSING",
    "EXPORT_CENTER_NAMESPACE",
    "DomainSummary",
    "GenerationRecord",
    "HistoryResult",
    "ImportRecord",
    "Ledger",
    "NotificationThreshold",
    "StalenessConfig",
    "StalenessOutcome",
    "TimeAnchor",
    "build_metrics",
    "build_provenance",
    "check_delta",
    "check_rollback",
    "decide_generation",
    "default_ledger_path",
    "evaluate_domain",
    "evaluate_staleness",
    "export_domain",
    "export_uuid",
    "format_rfc3339",
    "load_staleness_config",
    "load_time_anchor",
    "parse_rfc3339",
    "render_prometheus",
    "system_anchor",
]
