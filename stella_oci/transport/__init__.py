"""HTTP transport to OCI registries: auth, retries, streaming uploads and downloads."""

from stella_oci.transport.client import (
    BlobOpener,
    ManifestHead,
    ManifestResponse,
    PutManifestResult,
    RegistryClient,
)
from stella_oci.transport.options import RetryPolicy, TransportOptions
from stella_oci.transport.redact import redact, register_secret

__all__ = [
    "BlobOpener",
    "ManifestHead",
    "ManifestResponse",
    "PutManifestResult",
    "RegistryClient",
    "RetryPolicy",
    "TransportOptions",
    "redact",
    "register_secret",
]
