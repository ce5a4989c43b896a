"""stella-oci: the OCI registry distribution plugin of the StellaOps Export Center.

The package reads like a table of contents:

- ``api`` / ``verbs/``: push, pull, verify, inspect, copy (what users call);
- ``engine``: the copy engine every verb runs on;
- ``targets/``: where artifacts live (registry, OCI layout dir/archive, bundle dir);
- ``transport/``: HTTP to registries (auth, TLS, retries, uploads), no StellaOps;
- ``oci/``: references, descriptors, manifests, digests, no HTTP;
- ``export/``: the StellaOps meaning (models, schema, annotations, bundles), no HTTP;
- ``airgap/``: staleness and the import ledger; ``signing/``: offline DSSE verification;
- ``cli``, ``output``: the command line; ``plugin``: the Export Center entry point.
"""

from __future__ import annotations

__version__ = "0.1.0"

from stella_oci.api import RunOptions, copy, inspect, pull, push, verify
from stella_oci.errors import StellaOciError
from stella_oci.results import CopyResult, InspectResult, PushResult, VerifyResult
from stella_oci.transport.options import RetryPolicy, TransportOptions

__all__ = [
    "CopyResult",
    "InspectResult",
    "PushResult",
    "RetryPolicy",
    "RunOptions",
    "StellaOciError",
    "TransportOptions",
    "VerifyResult",
    "__version__",
    "copy",
    "inspect",
    "pull",
    "push",
    "verify",
]
