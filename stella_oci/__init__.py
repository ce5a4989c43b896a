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

The names below are imported on first use (PEP 562), so that ``import stella_oci`` (and
``stella-oci --version`` / ``--help``) does not load pydantic, jsonschema or requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stella_oci.lazy import lazy_attributes
from stella_oci.version import __version__

#: Public name -> the module that defines it (imported on first attribute access).
_LAZY: dict[str, str] = {
    "AirgapOptions": "stella_oci.api",
    "RunOptions": "stella_oci.api",
    "attach": "stella_oci.api",
    "copy": "stella_oci.api",
    "delete": "stella_oci.api",
    "discover": "stella_oci.api",
    "fetch": "stella_oci.api",
    "have": "stella_oci.api",
    "inspect": "stella_oci.api",
    "load": "stella_oci.api",
    "login": "stella_oci.api",
    "logout": "stella_oci.api",
    "manifest": "stella_oci.api",
    "pull": "stella_oci.api",
    "push": "stella_oci.api",
    "resolve": "stella_oci.api",
    "save": "stella_oci.api",
    "tag": "stella_oci.api",
    "tags": "stella_oci.api",
    "verify": "stella_oci.api",
    "StellaOciError": "stella_oci.errors",
    "CopyResult": "stella_oci.results",
    "InspectResult": "stella_oci.results",
    "PushResult": "stella_oci.results",
    "VerifyResult": "stella_oci.results",
    "AttachResult": "stella_oci.verbs.referrers",
    "DiscoverResult": "stella_oci.verbs.referrers",
    "TagsResult": "stella_oci.verbs.tags",
    "ResolveResult": "stella_oci.verbs.resolve",
    "ManifestResult": "stella_oci.verbs.resolve",
    "TagResult": "stella_oci.verbs.tag",
    "DeleteResult": "stella_oci.verbs.delete",
    "FetchResult": "stella_oci.verbs.fetch",
    "HaveResult": "stella_oci.verbs.have",
    "LoadResult": "stella_oci.verbs.load",
    "SaveResult": "stella_oci.verbs.save",
    "LoginResult": "stella_oci.verbs.login",
    "LogoutResult": "stella_oci.verbs.login",
    "RetryPolicy": "stella_oci.transport.options",
    "TransportOptions": "stella_oci.transport.options",
}

if TYPE_CHECKING:
    from stella_oci.api import (
        AirgapOptions,
        RunOptions,
        attach,
        copy,
        delete,
        discover,
        fetch,
        have,
        inspect,
        load,
        login,
        logout,
        manifest,
        pull,
        push,
        resolve,
        save,
        tag,
        tags,
        verify,
    )
    from stella_oci.errors import StellaOciError
    from stella_oci.results import CopyResult, InspectResult, PushResult, VerifyResult
    from stella_oci.transport.options import RetryPolicy, TransportOptions
    from stella_oci.verbs.delete import DeleteResult
    from stella_oci.verbs.fetch import FetchResult
    from stella_oci.verbs.have import HaveResult
    from stella_oci.verbs.load import LoadResult
    from stella_oci.verbs.login import LoginResult, LogoutResult
    from stella_oci.verbs.referrers import AttachResult, DiscoverResult
    from stella_oci.verbs.resolve import ManifestResult, ResolveResult
    from stella_oci.verbs.save import SaveResult
    from stella_oci.verbs.tag import TagResult
    from stella_oci.verbs.tags import TagsResult


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())



__all__ = [
    "AirgapOptions",
    "AttachResult",
    "CopyResult",
    "DeleteResult",
    "DiscoverResult",
    "FetchResult",
    "HaveResult",
    "InspectResult",
    "LoadResult",
    "LoginResult",
    "LogoutResult",
    "ManifestResult",
    "PushResult",
    "ResolveResult",
    "RetryPolicy",
    "RunOptions",
    "SaveResult",
    "StellaOciError",
    "TagResult",
    "TagsResult",
    "TransportOptions",
    "VerifyResult",
    "__version__",
    "attach",
    "copy",
    "delete",
    "discover",
    "fetch",
    "have",
    "inspect",
    "load",
    "login",
    "logout",
    "manifest",
    "pull",
    "push",
    "resolve",
    "save",
    "tag",
    "tags",
    "verify",
]
