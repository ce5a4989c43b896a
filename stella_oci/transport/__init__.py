"""HTTP transport to OCI registries: auth, retries, streaming uploads and downloads.

The client names are imported on first use, so that ``stella_oci.transport.options`` can be
imported (by the CLI's option parsing) without loading requests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stella_oci.transport' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
