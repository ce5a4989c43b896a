"""The copy engine reads every source byte once, even when the upload goes in many parts.

(A regression test: each PATCH part used to read one chunk past its end, so the running hash
was out of step and the whole blob was re-read and re-hashed from byte 0 for every part.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from stella_oci.cancel import Cancellation
from stella_oci.engine import CopyEngine
from stella_oci.export.artifact import build_manifest
from stella_oci.export.bundle import open_bundle
from stella_oci.oci.manifest import Descriptor
from stella_oci.oci.reference import parse_reference
from stella_oci.targets.bundle import BundleSource
from stella_oci.targets.registry import RegistryTarget
from stella_oci.transport import RegistryClient, TransportOptions
from tests.support.bundles import make_bundle

MiB = 1024 * 1024


class CountingSource(BundleSource):
    """A bundle source that counts every byte it hands out."""

    read_bytes = 0
    opens: list[int]

    def open_blob(
        self, desc: Descriptor, offset: int = 0, cancel: Cancellation | None = None
    ) -> AbstractContextManager[Iterator[bytes]]:
        inner = super().open_blob(desc, offset, cancel)
        self.opens.append(offset)

        @contextmanager
        def counted() -> Iterator[Iterator[bytes]]:
            with inner as chunks:

                def gen() -> Iterator[bytes]:
                    for chunk in chunks:
                        self.read_bytes += len(chunk)
                        yield chunk

                yield gen()

        return counted()


def test_chunked_upload_reads_each_byte_once(registry, fresh_repo, tmp_path: Path) -> None:
    size = 40 * MiB + 123
    bundle_dir = make_bundle(tmp_path / "b", {"db/big.db": size, "meta.json": b"{\"v\": 1}"})
    ref = parse_reference(f"{registry.host}/{fresh_repo}:v1")
    with open_bundle(bundle_dir) as bundle:
        artifact = build_manifest(bundle, user_annotations={}, provenance_ref=None)
        src = CountingSource(bundle, artifact)
        src.opens = []
        client = RegistryClient(ref.api_host, TransportOptions(chunk_size=8 * MiB))
        dst = RegistryTarget(client, ref)
        engine = CopyEngine(concurrency=2)
        stats = engine.copy_graph(src, dst, artifact.descriptor, tags=["v1"], root_data=artifact.data)
        dst.close()
    total = sum(f.size for f in bundle.files) + 2  # the layers and the empty config
    assert stats.uploaded == len(bundle.files) + 1
    assert src.read_bytes == total, f"read {src.read_bytes} bytes for {total}: some were read twice"
    big = next(f for f in bundle.files if f.path == "db/big.db")
    assert registry.blob_path(big.digest).stat().st_size == size
