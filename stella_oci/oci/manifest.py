"""OCI descriptors, image manifests and indexes: parsing and deterministic serialization.

Manifests we *write* are serialized with sorted keys and no insignificant whitespace, so
the same content always gives the same bytes and digest. Manifests we *read* are kept as
the bytes the registry sent: a digest is always computed over those bytes, never over a
re-serialization.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, ValidationError, field_validator
from pydantic_core import core_schema as cs

from stella_oci.errors import VerificationError
from stella_oci.jsonio import load_json
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import check_digest, is_digest, sha256_digest


def _validation_model() -> type[BaseModel]:
    """The pydantic model of a descriptor: what :class:`Descriptor` accepts and the exact
    validation errors it raises, for every input its fast path does not take."""

    class Descriptor(BaseModel):  # named as the public class: the errors say "Descriptor"
        """An OCI content descriptor."""

        model_config = ConfigDict(populate_by_name=True, extra="allow", frozen=True)

        media_type: str = Field(alias="mediaType")
        digest: str
        size: int = Field(ge=0)
        annotations: dict[str, str] | None = None
        artifact_type: str | None = Field(default=None, alias="artifactType")
        data: str | None = None
        urls: list[str] | None = None
        platform: dict[str, Any] | None = None

        @field_validator("digest")
        @classmethod
        def _digest_form(cls, v: str) -> str:
            if not is_digest(v):
                raise ValueError(f"digest {v!r} is not of the form sha256:<64 lowercase hex>")
            return v

    return Descriptor


_Model = _validation_model()
_UNSET: Any = object()
_FIELDS = ("media_type", "digest", "size", "annotations", "artifact_type", "data", "urls", "platform")
_ALIASES = {"media_type": "mediaType", "artifact_type": "artifactType"}
_TITLE = mt.ANNOTATION_TITLE


def _str_dict(d: Any) -> bool:
    return type(d) is dict and all(type(k) is str and type(v) is str for k, v in d.items())


def _str_list(v: Any) -> bool:
    return type(v) is list and all(type(x) is str for x in v)


def _well_typed(
    media_type: Any, digest: Any, size: Any, annotations: Any, artifact_type: Any, data: Any, urls: Any,
    platform: Any,
) -> bool:
    """What the model would accept as it is (None for an absent field): the fast paths build a
    Descriptor without the model only then; anything else goes to the model, with its errors."""
    return (
        type(media_type) is str
        and type(digest) is str
        and type(size) is int
        and size >= 0
        and (annotations is None or _str_dict(annotations))
        and (artifact_type is None or type(artifact_type) is str)
        and (data is None or type(data) is str)
        and (urls is None or _str_list(urls))
        and (platform is None or (type(platform) is dict and all(type(k) is str for k in platform)))
        and is_digest(digest)
    )


class Descriptor:
    """An OCI content descriptor (immutable).

    A manifest of 10,000 layers holds 10,000 of these (issue 15), so it is a ``__slots__``
    object, not a pydantic model: ~100 bytes besides its strings, where a pydantic instance
    with its field dicts cost ~820. The media type is interned (one string for every layer
    of a type) and annotations that are just the title are kept as that string. Validation is
    the pydantic model's (:func:`_validation_model`): construction and parsing take a fast
    path for well-typed input and hand anything else to the model, so what is accepted, the
    coercions and the error messages are the model's. Unknown members are kept (round trips).
    """

    __slots__ = ("_ann", "_rest", "digest", "media_type", "size")

    media_type: str
    digest: str
    size: int
    _ann: str | dict[str, str] | None
    """None, the title (annotations ``{title: _ann}``) or the annotations."""
    _rest: tuple[str | None, str | None, list[str] | None, dict[str, Any] | None, dict[str, Any] | None] | None
    """(artifact_type, data, urls, platform, unknown members), or None when all are None."""

    def __init__(
        self,
        *,
        media_type: str = _UNSET,
        digest: str = _UNSET,
        size: int = _UNSET,
        annotations: dict[str, str] | None = _UNSET,
        artifact_type: str | None = _UNSET,
        data: str | None = _UNSET,
        urls: list[str] | None = _UNSET,
        platform: dict[str, Any] | None = _UNSET,
        **extra: Any,
    ) -> None:
        if (  # the common case first: a layer (media type, digest, size, maybe annotations)
            artifact_type is _UNSET
            and data is _UNSET
            and urls is _UNSET
            and platform is _UNSET
            and not extra
            and _well_typed(media_type, digest, size, None if annotations is _UNSET else annotations, None, None, None, None)
        ):
            self._set(media_type, digest, size, None if annotations is _UNSET else annotations, None, None, None, None, None)
            return
        # _UNSET, not None, for what was not given: the model's errors show the input as given
        given: dict[str, Any] = dict(
            media_type=media_type, digest=digest, size=size, annotations=annotations,
            artifact_type=artifact_type, data=data, urls=urls, platform=platform,
        )
        kwargs = {k: v for k, v in given.items() if v is not _UNSET}
        annotations = kwargs.get("annotations")
        artifact_type = kwargs.get("artifact_type")
        data = kwargs.get("data")
        urls = kwargs.get("urls")
        platform = kwargs.get("platform")
        if not extra and _well_typed(media_type, digest, size, annotations, artifact_type, data, urls, platform):
            self._set(
                media_type, digest, size, annotations, artifact_type, data,
                None if urls is None else list(urls), None if platform is None else dict(platform), None,
            )
            return
        kwargs.update(extra)
        self._adopt(_Model(**kwargs))

    def _set(
        self,
        media_type: str,
        digest: str,
        size: int,
        annotations: dict[str, str] | None,
        artifact_type: str | None,
        data: str | None,
        urls: list[str] | None,
        platform: dict[str, Any] | None,
        extra: dict[str, Any] | None,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "media_type", sys.intern(media_type) if type(media_type) is str else media_type)
        setattr_(self, "digest", digest)
        setattr_(self, "size", size)
        if annotations is not None and len(annotations) == 1 and type(annotations.get(_TITLE)) is str:
            setattr_(self, "_ann", annotations[_TITLE])
        else:
            setattr_(self, "_ann", None if annotations is None else dict(annotations))
        rest = None
        if artifact_type is not None or data is not None or urls is not None or platform is not None or extra:
            rest = (artifact_type, data, urls, platform, extra or None)
        setattr_(self, "_rest", rest)

    def _adopt(self, m: BaseModel) -> None:
        f = m.__dict__
        self._set(
            f["media_type"], f["digest"], f["size"], f["annotations"], f["artifact_type"], f["data"],
            f["urls"], f["platform"], dict(m.__pydantic_extra__) if m.__pydantic_extra__ else None,
        )

    @classmethod
    def _of_model(cls, m: BaseModel) -> Descriptor:
        self = cls.__new__(cls)
        self._adopt(m)
        return self

    # -- the fields that are rarely set ------------------------------------------------
    @property
    def annotations(self) -> dict[str, str] | None:
        ann = self._ann
        if type(ann) is str:
            return {_TITLE: ann}
        return ann  # type: ignore[return-value]

    @property
    def artifact_type(self) -> str | None:
        return None if self._rest is None else self._rest[0]

    @property
    def data(self) -> str | None:
        return None if self._rest is None else self._rest[1]

    @property
    def urls(self) -> list[str] | None:
        return None if self._rest is None else self._rest[2]

    @property
    def platform(self) -> dict[str, Any] | None:
        return None if self._rest is None else self._rest[3]

    @property
    def model_extra(self) -> dict[str, Any]:
        """Members of the descriptor that are not OCI fields (kept for round trips)."""
        return {} if self._rest is None or self._rest[4] is None else dict(self._rest[4])

    @property
    def title(self) -> str | None:
        ann = self._ann
        if ann is None:
            return None
        if type(ann) is str:
            return ann
        return ann.get(_TITLE)  # type: ignore[union-attr]

    # -- immutability, equality, copies ------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Descriptor is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Descriptor is immutable: cannot delete {name!r}")

    def _extra(self) -> dict[str, Any] | None:
        return None if self._rest is None else self._rest[4]

    def _key(self) -> tuple[Any, ...]:
        return (
            self.media_type, self.digest, self.size, self.annotations, self.artifact_type, self.data,
            self.urls, self.platform, self.model_extra,
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not Descriptor:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.media_type, self.digest, self.size))

    def __repr__(self) -> str:
        fields = [f"{name}={getattr(self, name)!r}" for name in _FIELDS]
        fields += [f"{k}={v!r}" for k, v in self.model_extra.items()]
        return f"Descriptor({', '.join(fields)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._fields(), self._extra()))

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}

    # -- the pydantic model API callers use --------------------------------------------
    @classmethod
    def model_validate(cls, obj: Any) -> Descriptor:
        """Validate a JSON object (or a Descriptor): pydantic's ValidationError on bad input."""
        if type(obj) is Descriptor:
            return obj
        return cls._of_model(_Model.model_validate(obj))

    @classmethod
    def model_construct(cls, **values: Any) -> Descriptor:
        """Build one without validation (tests: a descriptor no valid input gives)."""
        return _rebuild(values)

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Descriptor:
        """A copy with the fields in ``update`` (by field name) replaced; not validated."""
        values = self._fields()
        extra = self.model_extra
        for key, value in (update or {}).items():
            if key in values:
                values[key] = value
            else:
                extra[key] = value
        return _rebuild(values, extra)

    def model_dump(self, *, by_alias: bool = False, exclude_none: bool = False) -> dict[str, Any]:
        """The fields as a new dict, containers copied (as pydantic dumps): changing the dump
        never changes the descriptor."""
        out: dict[str, Any] = {}
        for name, value in self._fields().items():
            if not (exclude_none and value is None):
                out[_ALIASES.get(name, name) if by_alias else name] = copy.deepcopy(value)
        for name, value in self.model_extra.items():  # after the fields, as pydantic dumps them
            if not (exclude_none and value is None):
                out[name] = copy.deepcopy(value)
        return out

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> cs.CoreSchema:
        """A Descriptor field of a pydantic model (Manifest, Index): instances pass as they
        are, JSON objects are validated by the model (same errors), dumps are :meth:`model_dump`."""

        def validate(value: Any, inner: cs.ValidatorFunctionWrapHandler) -> Descriptor:
            if type(value) is Descriptor:
                return value
            if type(value) is dict:
                fast = _from_json(value)
                if fast is not None:
                    return fast
            return cls._of_model(inner(value))

        def serialize(value: Descriptor, info: cs.SerializationInfo) -> dict[str, Any]:
            return value.model_dump(by_alias=bool(info.by_alias), exclude_none=info.exclude_none)

        return cs.no_info_wrap_validator_function(
            validate,
            handler.generate_schema(_Model),
            serialization=cs.plain_serializer_function_ser_schema(serialize, info_arg=True),
        )

    # -- OCI ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        ann = self._ann
        if ann is not None:
            out["annotations"] = {_TITLE: ann} if type(ann) is str else dict(ann)  # type: ignore[arg-type]
        if self._rest is not None:
            out.update(self.model_dump(by_alias=True, exclude_none=True))
        return out

    def short(self) -> str:
        name = self.title
        return f"{self.digest} ({name})" if name else self.digest


_JSON_KEYS = frozenset(("mediaType", "digest", "size", "annotations", "artifactType", "data", "urls"))


def _from_json(obj: dict[str, Any]) -> Descriptor | None:
    """The Descriptor of a well-typed JSON descriptor object, without the model; None for
    anything else (unknown or name-form members, ``platform``, a wrong type or value), which
    the model then validates, with its errors."""
    media_type: Any = obj.get("mediaType")
    digest: Any = obj.get("digest")
    size: Any = obj.get("size")
    annotations = obj.get("annotations")
    artifact_type = obj.get("artifactType")
    data = obj.get("data")
    urls = obj.get("urls")
    if not _JSON_KEYS.issuperset(obj) or not _well_typed(
        media_type, digest, size, annotations, artifact_type, data, urls, None
    ):
        return None
    self = Descriptor.__new__(Descriptor)
    self._set(
        media_type, digest, size, annotations, artifact_type, data, None if urls is None else list(urls), None, None
    )
    return self


def _rebuild(values: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Descriptor:
    """A Descriptor of field values (names or aliases) and unknown members, not validated."""
    v = dict(values)
    for name, alias in _ALIASES.items():
        if alias in v:
            v[name] = v.pop(alias)
    known = {name: v.pop(name, None) for name in _FIELDS}
    self = Descriptor.__new__(Descriptor)
    self._set(
        known["media_type"], known["digest"], known["size"], known["annotations"], known["artifact_type"],
        known["data"], known["urls"], known["platform"], {**v, **(extra or {})} or None,
    )
    return self


class Manifest(BaseModel):
    """An OCI image manifest (also used for artifacts)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    artifact_type: str | None = Field(default=None, alias="artifactType")
    config: Descriptor
    layers: list[Descriptor] = Field(default_factory=list)
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class Index(BaseModel):
    """An OCI image index (used for the referrers API and the referrers tag schema)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    artifact_type: str | None = Field(default=None, alias="artifactType")
    manifests: list[Descriptor] = Field(default_factory=list)
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


def canonical_json(obj: Any) -> bytes:
    """The bytes stella-oci writes for any JSON document: sorted keys, compact, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode(doc: Manifest | Index) -> tuple[bytes, Descriptor]:
    """Serialize a manifest or index deterministically; return its bytes and descriptor."""
    data = canonical_json(doc.to_dict())
    media_type = doc.media_type or (mt.OCI_INDEX if isinstance(doc, Index) else mt.OCI_MANIFEST)
    desc = Descriptor(media_type=media_type, digest=sha256_digest(data), size=len(data))
    return data, desc


def _load_json(data: bytes, where: str, object_hook: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    if len(data) > mt.MAX_MANIFEST_BYTES:
        raise VerificationError(f"{where}: manifest is {len(data)} bytes, more than the 4 MiB limit")
    return load_json(
        data, f"{where}: manifest", max_bytes=mt.MAX_MANIFEST_BYTES, error=VerificationError, object_hook=object_hook
    )


def _load_object(data: bytes, where: str) -> dict[str, Any]:
    obj = _load_json(data, where)
    if not isinstance(obj, dict):
        raise VerificationError(f"{where}: manifest is not a JSON object")
    return obj


def _descriptor_or_object(obj: dict[str, Any]) -> Any:
    return _from_json(obj) or obj


def _load_with_descriptors(data: bytes, where: str, single: tuple[str, ...], lists: tuple[str, ...]) -> dict[str, Any]:
    """The manifest's JSON object with its well-formed descriptors already turned into
    :class:`Descriptor` objects while it is parsed: a 10,000-layer manifest never exists as
    10,000 layer dicts and their descriptors at once (issue 15). The descriptors may only sit
    where the document type has them (``single`` members, items of the ``lists`` members);
    one anywhere else (an unknown member, nested, the document itself) and the document is
    parsed again as plain JSON, so the model sees exactly what it always saw."""
    obj = _load_json(data, where, _descriptor_or_object)
    if type(obj) is dict and not _misplaced_descriptor(obj, single, lists):
        return obj
    return _load_object(data, where)


def _misplaced_descriptor(obj: dict[str, Any], single: tuple[str, ...], lists: tuple[str, ...]) -> bool:
    stack: list[Any] = []
    for key, value in obj.items():
        if key in single and type(value) is Descriptor:
            continue
        if key in lists and type(value) is list:
            stack.extend(v for v in value if type(v) is not Descriptor)
            continue
        stack.append(value)
    while stack:  # (nesting is bounded: load_json checked the depth)
        node = stack.pop()
        if type(node) is Descriptor:
            return True
        if type(node) is dict:
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
    return False


def parse_manifest(data: bytes, where: str = "manifest") -> Manifest:
    obj = _load_with_descriptors(data, where, ("config", "subject"), ("layers",))
    try:
        return Manifest.model_validate(obj)
    except ValidationError as exc:
        raise VerificationError(f"{where}: not an OCI image manifest: {_first_error(exc)}") from None


def parse_index(data: bytes, where: str = "index") -> Index:
    obj = _load_with_descriptors(data, where, ("subject",), ("manifests",))
    try:
        return Index.model_validate(obj)
    except ValidationError as exc:
        raise VerificationError(f"{where}: not an OCI image index: {_first_error(exc)}") from None


def media_type_of(data: bytes, declared: str | None = None) -> str:
    """The media type of a manifest document: its own mediaType member, else what was declared."""
    obj = _load_with_descriptors(data, "manifest", ("config", "subject"), ("layers", "manifests"))
    mt_field = obj.get("mediaType")
    if isinstance(mt_field, str):
        return mt_field
    if declared:
        return declared
    return mt.OCI_INDEX if "manifests" in obj else mt.OCI_MANIFEST


def children(data: bytes, media_type: str) -> list[Descriptor]:
    """Descriptors a manifest or index points at (config and layers, or manifests)."""
    if media_type in (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST):
        return list(parse_index(data).manifests)
    m = parse_manifest(data)
    return [m.config, *m.layers]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = "/".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err.get('msg')}"


def check_digest_matches(data: bytes, expected: str, what: str) -> None:
    actual = sha256_digest(data)
    if actual != expected:
        raise VerificationError(f"{what}: content hashes to {actual}, expected {expected}")


def require_sha256(digest: str, what: str = "digest") -> str:
    """Kept for callers: :func:`stella_oci.oci.digest.check_digest` with exit 2."""
    return check_digest(digest, what)


__all__ = [
    "Descriptor",
    "Index",
    "Manifest",
    "canonical_json",
    "check_digest_matches",
    "children",
    "encode",
    "media_type_of",
    "parse_index",
    "parse_manifest",
    "require_sha256",
]
