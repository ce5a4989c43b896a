"""The Export Center plugin: registered as entry point ``oci`` in ``stellaops.export.distribution``.

A worker discovers it without importing stella-oci by name::

    from importlib.metadata import entry_points
    plugin_cls = entry_points(group="stellaops.export.distribution")["oci"].load()
    plugin = plugin_cls()
    result = plugin.push("/exports/run-42", "registry.local/stellaops/exports")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stella_oci import api
from stella_oci.results import PushResult, VerifyResult
from stella_oci.transport.options import TransportOptions
from stella_oci.verbs.common import RunOptions


class OciDistribution:
    """Push, pull and verify exports over OCI registries with fixed transport options."""

    name = "oci"

    def __init__(self, transport: TransportOptions | None = None, concurrency: int | None = None) -> None:
        self.run = RunOptions(transport=transport or TransportOptions(), concurrency=concurrency)

    def push(
        self,
        bundle: str | Path,
        reference: str | None = None,
        *,
        tags: Sequence[str] = (),
        annotations: Sequence[str] = (),
    ) -> PushResult:
        return api.push(bundle, reference, tags=tags, annotations=annotations, run=self.run)

    def pull(self, reference: str, output: str | Path, *, expect_digest: str | None = None) -> VerifyResult:
        return api.pull(reference, output, expect_digest=expect_digest, run=self.run)

    def verify(self, reference: str, *, expect_digest: str | None = None) -> VerifyResult:
        return api.verify(reference, expect_digest=expect_digest, run=self.run)
