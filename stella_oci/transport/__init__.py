"""HTTP transport to OCI registries: auth, retries, streaming uploads and downloads.

The client names are imported on first use, so that ``stella_oci.transport.options`` can be
imported (by the CLI's option parsing) without loading requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stella_oci.lazy import lazy_attributes

# Light modules, imported now: ``redact`` must be bound to the function, not to the submodule
# of the same name (which importing the submodule would bind).
from stella_oci.transport.options import RetryPolicy, TransportOptions
from stella_oci.transport.redact import redact, register_secret

_LAZY: dict[str, str] = {
    "BlobOpener": "stella_oci.transport.client",
    "ManifestHead": "stella_oci.transport.client",
    "ManifestResponse": "stella_oci.transport.client",
    "PutManifestResult": "stella_oci.transport.client",
    "RegistryClient": "stella_oci.transport.client",
}

if TYPE_CHECKING:
    from stella_oci.transport.client import (
        BlobOpener,
        ManifestHead,
        ManifestResponse,
        PutManifestResult,
        RegistryClient,
    )


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


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
