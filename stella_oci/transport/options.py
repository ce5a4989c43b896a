"""How to reach registries: TLS, credentials, retries, timeouts, mirrors, offline mode.

One :class:`TransportOptions` is built by the CLI (or the Python caller) and handed to
every :class:`~stella_oci.transport.client.RegistryClient`. Nothing here knows StellaOps.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """Retries on connection errors, 408, 429, 500, 502, 503, 504.

    Exponential backoff with full jitter (``base * 2**attempt``, capped at ``max_delay``),
    ``Retry-After`` honoured (capped at ``max_delay``), at most ``attempts`` tries and at most
    ``total_seconds`` of waiting for one request; then :class:`TransientError` (exit 10).
    """

    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    total_seconds: float = 25.0


@dataclass(frozen=True)
class TransportOptions:
    """How to reach registries: HTTP or HTTPS, TLS files, credentials, retries, deadlines, offline."""

    plain_http: bool = False
    """Speak HTTP, not HTTPS, to every registry. Loopback registries (``localhost``,
    ``127.0.0.0/8``, ``::1``) get HTTP automatically unless ``ca_file`` or ``client_cert`` is
    given; if such a registry answers that it speaks only HTTPS, the client switches to HTTPS
    (see ``client`` and docs/transport.md). Other hosts get HTTP only when this is set."""
    insecure: bool = False
    """Do not verify TLS certificates (still HTTPS)."""
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    registry_config: str | None = None
    """Path of a Docker config.json; default: $DOCKER_CONFIG/config.json or ~/.docker/config.json."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    """Longest silence between two reads (seconds)."""
    timeout: float = 60.0
    """Total deadline of one small request (everything but blob bodies) and of the headers
    of every answer, redirects included (``--timeout``, ``STELLA_OCI_TIMEOUT``); past it the
    request is aborted and retried like a cut connection. See :mod:`~stella_oci.transport.deadline`."""
    min_speed: float = 1024.0
    """Blob bodies (uploads and downloads) must move at least this many bytes per second,
    measured over ``speed_window`` seconds (``--min-speed``, ``STELLA_OCI_MIN_SPEED``; 0: no
    minimum); a slower transfer is aborted and resumed like a cut connection."""
    speed_window: float = 30.0
    """The window of ``min_speed`` (seconds; ``STELLA_OCI_SPEED_WINDOW``)."""
    offline: bool = False
    """Refuse (exit 5) before opening any connection."""
    pool_size: int = 32
    """Connections kept per host: at least the largest ``--concurrency`` (32), so that parallel
    transfers reuse kept-alive connections instead of opening and discarding new ones."""
    chunk_size: int | None = None
    """Part size for chunked (PATCH) uploads (``--chunk-size``, ``STELLA_OCI_CHUNK_SIZE``):
    blobs larger than this go in parts of this size, smaller ones in one streamed PUT. None
    (the default): every blob in one streamed PUT, as oras-go and containerd send them (each
    part costs the distribution registry a round of work, and ghcr.io refuses PATCH bodies over
    4 MiB); parts of 64 MiB only when the registry announces ``OCI-Chunk-Min-Length`` (parts of
    at least that), answers ``413`` to the whole blob, or resumes an upload at an offset
    (docs/transport.md, "Uploads")."""
    user_agent: str = "stella-oci"
    rate_limit: float | None = None
    """Requests per second to each registry host, shared by every thread of the process
    (``--rate-limit N/s``, as regclient's ``reqPerSec``; None: no limit). Independently of it,
    a ``429`` from a host makes every request to that host wait out its ``Retry-After``
    (:mod:`~stella_oci.transport.ratelimit`)."""

    def __post_init__(self) -> None:
        """The TLS files must exist and load (exit 2 naming the option and the file), checked
        here once rather than as an ``OSError`` from the first request."""
        from stella_oci.transport.tlsfiles import check_tls_files

        check_tls_files(self.ca_file, self.client_cert, self.client_key)
