"""The Python API: the same verbs the CLI runs, returning typed results.

    from stella_oci import push, pull, verify
    result = push("./export", "localhost:5000/stellaops/exports:v1")
    print(result.digest)

Every function raises :class:`stella_oci.errors.StellaOciError` subclasses whose
``exit_code`` is the CLI's exit code for the same failure.
"""

from __future__ import annotations

from stella_oci.verbs.common import RunOptions
from stella_oci.verbs.copy import copy
from stella_oci.verbs.inspect import inspect
from stella_oci.verbs.pull import pull, verify
from stella_oci.verbs.push import push
from stella_oci.verbs.referrers import attach, discover

__all__ = ["RunOptions", "attach", "copy", "discover", "inspect", "pull", "push", "verify"]
