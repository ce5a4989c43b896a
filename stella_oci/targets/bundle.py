"""A StellaOps bundle directory as a target.

- :class:`BundleSource` serves a checked bundle (and the manifest built from it) for a push:
  blobs are read from the bundle's files, in chunks.
- :class:`BundleSink` receives a pull: every blob is written under its layer title into a
  temporary directory beside the output, verified while written; :meth:`BundleSink.commit`
  renames it into place, :meth:`BundleSink.abort` removes it, so a failed pull leaves nothing.
- :class:`DiscardSink` receives a verify: blobs are streamed, hashed and dropped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from stella_oci.errors import InvalidInputError, NotFoundError, VerificationError
from stella_oci.export.artifact import BuiltArtifact
from stella_oci.export.bundle import Bundle
from stella_oci.export.paths import check_relative_path
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import is_digest, iter_file
from stella_oci.oci.manifest import Descriptor
from stella_oci.targets.base import BlobOpener, ProgressFn, Target


class BundleSource(Target):
    """Read-only: the artifact of a bundle being pushed."""

    def __init__(self, bundle: Bundle, artifact: BuiltArtifact) -> None:
        self.bundle = bundle
        self.artifact = artifact
        self.name = str(bundle.root)
        self._files = {f.digest: f.file for f in bundle.files}

    def resolve(self, selector: str) -> Descriptor:
        return self.artifact.descriptor

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        if desc.digest != self.artifact.descriptor.digest:
            raise NotFoundError(f"{self.name}: no manifest {desc.digest}")
        return self.artifact.data

    @contextmanager
    def _open(self, desc: Descriptor, offset: int) -> Iterator[Iterator[bytes]]:
        if desc.digest == mt.EMPTY_DIGEST:
            yield iter((mt.EMPTY_JSON[offset:],))
            return
        path = self._files.get(desc.digest)
        if path is None:
            raise NotFoundError(f"{self.name}: no file with digest {desc.digest}")
        yield iter_file(path, offset)

    def open_blob(self, desc: Descriptor, offset: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        return self._open(desc, offset)

    def has_blob(self, desc: Descriptor) -> bool:
        return desc.digest == mt.EMPTY_DIGEST or desc.digest in self._files

    def push_blob(self, desc: Descriptor, opener: BlobOpener, progress: ProgressFn | None = None) -> str:
        raise InvalidInputError(f"{self.name}: a bundle being pushed is read-only")

    def push_manifest(self, desc: Descriptor, data: bytes, tags: Sequence[str] = ()) -> None:
        raise InvalidInputError(f"{self.name}: a bundle being pushed is read-only")


class BundleSink(Target):
    """Write-only: a pulled bundle, assembled in a temporary directory beside ``output``."""

    def __init__(self, output: Path) -> None:
        self.output = Path(output)
        self.name = str(self.output)
        if self.output.exists() and (not self.output.is_dir() or any(self.output.iterdir())):
            raise InvalidInputError(
                f"{self.output}: already exists and is not an empty directory",
                hint="choose a new --output directory; stella-oci never overwrites or merges into a bundle",
            )
        parent = self.output.resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.output.name}.partial-", dir=parent))
        self._titles: dict[str, list[str]] = {}
        self.committed = False

    def expect(self, layers: Sequence[Descriptor]) -> None:
        """Tell the sink which titles each digest is to be written under (layers may share a digest)."""
        for layer in layers:
            title = layer.title
            if title is None:
                raise VerificationError(f"layer {layer.digest} has no {mt.ANNOTATION_TITLE}")
            check_relative_path(title, where=f"layer {layer.digest} title", error=VerificationError)
            self._titles.setdefault(layer.digest, []).append(title)

    def path_of(self, title: str) -> Path:
        return self.tmp / title

    # --- Target ---------------------------------------------------------------
    def resolve(self, selector: str) -> Descriptor:
        raise NotFoundError(f"{self.name}: a bundle being pulled is write-only")

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        raise NotFoundError(f"{self.name}: a bundle being pulled is write-only")

    def open_blob(self, desc: Descriptor, offset: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        raise NotFoundError(f"{self.name}: a bundle being pulled is write-only")

    def has_blob(self, desc: Descriptor) -> bool:
        return False

    def push_blob(self, desc: Descriptor, opener: BlobOpener, progress: ProgressFn | None = None) -> str:
        if not is_digest(desc.digest):
            raise VerificationError(f"invalid digest {desc.digest!r}")
        titles = self._titles.get(desc.digest)
        if not titles:
            if desc.digest == mt.EMPTY_DIGEST:
                return "exists"  # the config: verified by the engine, not part of the bundle
            raise VerificationError(f"blob {desc.digest} is not a layer of this export")
        first = self.path_of(titles[0])
        first.parent.mkdir(parents=True, exist_ok=True)
        partial = first.with_name(f".{first.name}.partial")
        try:
            # The transport resumes a cut download itself; the engine verifies while we write.
            with opener(0) as chunks, open(partial, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
            os.replace(partial, first)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        for title in titles[1:]:
            dest = self.path_of(title)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(first, dest)
        return "uploaded"

    def push_manifest(self, desc: Descriptor, data: bytes, tags: Sequence[str] = ()) -> None:
        """The bundle keeps no OCI manifest: the pull result reports its digest instead."""

    def commit(self) -> None:
        if self.output.exists():
            self.output.rmdir()  # empty (checked in __init__)
        os.replace(self.tmp, self.output)
        self.committed = True

    def abort(self) -> None:
        if not self.committed:
            shutil.rmtree(self.tmp, ignore_errors=True)


class DiscardSink(Target):
    """A verify: blobs stream through the engine's verification and are dropped."""

    name = "(verify)"

    def resolve(self, selector: str) -> Descriptor:
        raise NotFoundError("verify keeps nothing")

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        raise NotFoundError("verify keeps nothing")

    def open_blob(self, desc: Descriptor, offset: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        raise NotFoundError("verify keeps nothing")

    def has_blob(self, desc: Descriptor) -> bool:
        return False

    def push_blob(self, desc: Descriptor, opener: BlobOpener, progress: ProgressFn | None = None) -> str:
        with opener(0) as chunks:
            for _ in chunks:
                pass
        return "uploaded"

    def push_manifest(self, desc: Descriptor, data: bytes, tags: Sequence[str] = ()) -> None:
        pass
