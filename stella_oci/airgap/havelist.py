"""The have-list: what a mirror already holds, written by ``stella-oci have DEST`` and read by
``save --since HAVELIST`` (which then leaves out every blob the mirror has).

Format (version 1; JSON Schema ``stella_oci/data/have-list.schema.json``, docs/airgap.md)::

    {
      "kind": "stella-oci/have-list",
      "schemaVersion": 1,
      "destination": "mirror.local:5000/stella",
      "createdBy": "stella-oci 1.2.3",
      "generations": {"registry.a:5000": 47},
      "repositories": [
        {"repository": "stellaops/mirror",
         "tags": {"2026-11-20": "sha256:..."},
         "blobs": ["sha256:...", "sha256:..."]}
      ]
    }

``generations`` (optional): for each archive origin, the highest ``mirrorGeneration`` ``load``
has applied at this destination, read from the import ledger ``have`` was given; ``save
--since HAVELIST`` numbers its archive one above it.

``destination`` is the ``load`` DEST the list describes (a registry host, ``host/prefix`` or
``oci:DIR``); ``repository`` is the path below it, i.e. the source repository path that
``load`` writes to ``DEST/<repository>``. ``blobs`` are the digests of every config and layer
(and, for an index, of its manifests' blobs) reachable from the repository's tags; manifests
are not listed, they always travel. A registry shows a blob only in the repositories that
link it, so the list is per repository and ``save`` leaves a blob out only for an export whose
repository has it.

Deterministic: repositories sorted by name, tags sorted (JSON keys), blobs sorted and unique;
no timestamps. Bounded: :data:`MAX_REPOSITORIES`, :data:`MAX_TAGS_PER_REPOSITORY`,
:data:`MAX_BLOBS` and :data:`MAX_HAVE_LIST_BYTES` on both writing and reading.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from stella_oci.errors import InvalidInputError

HAVE_LIST_KIND = "stella-oci/have-list"
HAVE_LIST_SCHEMA_VERSION = 1
MAX_REPOSITORIES = 10_000
MAX_TAGS_PER_REPOSITORY = 100_000
MAX_BLOBS = 2_000_000
MAX_HAVE_LIST_BYTES = 256 * 1024 * 1024
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "data" / "have-list.schema.json"
SCHEMA_ID = "https://stellaops.io/schemas/stella-oci/have-list.v1.schema.json"

_DIGEST = r"^sha256:[0-9a-f]{64}$"
Digest = Annotated[str, StringConstraints(pattern=_DIGEST)]
_MODEL = ConfigDict(
    alias_generator=to_camel, populate_by_name=True, use_attribute_docstrings=True, extra="forbid"
)


class HaveRepository(BaseModel):
    """One repository below the destination and what it holds."""

    model_config = _MODEL

    repository: str = Field(min_length=1, max_length=512)
    """The path below ``destination`` (the source repository path ``load`` writes to)."""
    tags: dict[str, Digest] = Field(default={}, max_length=MAX_TAGS_PER_REPOSITORY)
    """Every tag and the manifest digest it points at."""
    blobs: list[Digest] = Field(default=[], max_length=MAX_BLOBS)
    """Sorted, unique digests of the configs and layers reachable from the tags."""

    @field_validator("blobs")
    @classmethod
    def _blobs(cls, v: list[str]) -> list[str]:
        if v != sorted(set(v)):
            raise ValueError("blobs must be sorted and unique")
        return v


class HaveList(BaseModel):
    """What a mirror holds (``stella-oci have``), for ``save --since``."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="forbid",
        json_schema_extra={"$id": SCHEMA_ID, "title": "stella-oci have-list"},
    )

    kind: Literal["stella-oci/have-list"] = "stella-oci/have-list"
    schema_version: Literal[1] = 1
    destination: str
    """The ``load`` DEST described: a registry host, ``host/prefix`` or ``oci:DIR``."""
    created_by: str
    generations: dict[str, Annotated[int, Field(ge=1)]] = Field(default={}, max_length=MAX_REPOSITORIES)
    """Origin (the registries a save archive came from) -> the highest ``mirrorGeneration``
    applied at ``destination``, from the import ledger; ``save --since`` numbers one above it."""
    repositories: list[HaveRepository] = Field(max_length=MAX_REPOSITORIES)
    """Sorted by ``repository``, each once."""

    @field_validator("repositories")
    @classmethod
    def _sorted(cls, v: list[HaveRepository]) -> list[HaveRepository]:
        names = [r.repository for r in v]
        if names != sorted(set(names)):
            raise ValueError("repositories must be sorted by name, each once")
        return v

    def blob_count(self) -> int:
        return sum(len(r.blobs) for r in self.repositories)

    def by_repository(self) -> dict[str, set[str]]:
        return {r.repository: set(r.blobs) for r in self.repositories}


def have_list_schema() -> dict[str, object]:
    """The JSON Schema of the format (what ``stella_oci/data/have-list.schema.json`` holds)."""
    schema = HaveList.model_json_schema(by_alias=True, mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render(have: HaveList) -> bytes:
    """Deterministic bytes: sorted keys, two-space indent, trailing newline."""
    return (json.dumps(have.model_dump(by_alias=True), indent=2, sort_keys=True) + "\n").encode()


def write_have_list(have: HaveList, out: Path) -> None:
    """Write ``out`` atomically (temporary file beside it, fsync, rename)."""
    data = render(have)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def looks_like_have_list(path: Path) -> bool:
    """A JSON document (starts with ``{``), not a tar archive."""
    with open(path, "rb") as fh:
        return fh.read(64).lstrip().startswith(b"{")


def read_have_list(path: Path) -> HaveList:
    """Read and validate a have-list (exit 2 naming the file, the field and the fix)."""
    size = path.stat().st_size
    if size > MAX_HAVE_LIST_BYTES:
        raise InvalidInputError(f"have-list {path}: {size} bytes, more than {MAX_HAVE_LIST_BYTES}")
    try:
        have = HaveList.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "/".join(str(p) for p in first["loc"]) or "(document)"
        raise InvalidInputError(
            f"have-list {path}: {where}: {first['msg']}",
            hint="give a file written by `stella-oci have DEST --output FILE` (format: docs/airgap.md)",
        ) from None
    if have.blob_count() > MAX_BLOBS:
        raise InvalidInputError(f"have-list {path}: more than {MAX_BLOBS} blobs")
    return have


__all__ = [
    "HAVE_LIST_KIND",
    "HaveList",
    "HaveRepository",
    "have_list_schema",
    "looks_like_have_list",
    "read_have_list",
    "render",
    "write_have_list",
]


if __name__ == "__main__":  # python -m stella_oci.airgap.havelist: rewrite the shipped schema
    SCHEMA_FILE.write_text(json.dumps(have_list_schema(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {SCHEMA_FILE}")
