"""The Python API: the same verbs the CLI runs, returning typed results.

    from stella_oci import push, pull, verify
    result = push("./export", "localhost:5000/stellaops/exports:v1")
    print(result.digest)

Every function raises :class:`stella_oci.errors.StellaOciError` subclasses whose
``exit_code`` is the CLI's exit code for the same failure.
"""

from __future__ import annotations

from stella_oci.verbs.airgap import AirgapOptions
from stella_oci.verbs.common import RunOptions
from stella_oci.verbs.copy import copy
from stella_oci.verbs.delete import delete
from stella_oci.verbs.fetch import fetch
from stella_oci.verbs.have import have
from stella_oci.verbs.inspect import inspect
from stella_oci.verbs.load import load
from stella_oci.verbs.login import login, logout
from stella_oci.verbs.pull import pull, verify
from stella_oci.verbs.push import push
from stella_oci.verbs.referrers import attach, discover
from stella_oci.verbs.resolve import manifest, resolve
from stella_oci.verbs.save import save
from stella_oci.verbs.tag import tag
from stella_oci.verbs.tags import tags

__all__ = [
    "AirgapOptions",
    "RunOptions",
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
