"""Media types and ``io.stellaops.*`` annotations of the StellaOps export artifact.

The manifest annotations (CONTRACT section 2) are a function of export.json alone, plus
the provenance reference when export.json does not name one:

=======================================  ==================================================
``io.stellaops.export.profile``          ``<profile.kind>:<profile.variant>``
``io.stellaops.export.run``              ``runId``, else ``exportId``
``io.stellaops.export.manifest-digest``  :func:`~stella_oci.export.canonical.manifest_digest`
``io.stellaops.export.provenance-ref``   first of: ``integrity.oci.annotations`` value,
                                         ``attestations.provenanceRef``, ``sha256:`` digest of
                                         provenance.json, ``--provenance-ref``
``io.stellaops.export.id``               ``exportId``
``io.stellaops.export.tenant``           ``tenant``
``org.opencontainers.image.created``     ``generatedAt`` (verbatim)
=======================================  ==================================================

:func:`compute_annotations` builds them for a push (errors exit 2);
:func:`check_annotations` checks the ones read back on pull / verify (errors exit 3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.export.models import ExportManifest

ARTIFACT_TYPE = "application/vnd.stellaops.export.v1+json"
EXPORT_MANIFEST_MEDIA_TYPE = "application/vnd.stellaops.export.manifest.v1+json"
IN_TOTO_MEDIA_TYPE = "application/vnd.in-toto+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"

RESERVED_PREFIX = "io.stellaops."
ANN_PROFILE = "io.stellaops.export.profile"
ANN_RUN = "io.stellaops.export.run"
ANN_MANIFEST_DIGEST = "io.stellaops.export.manifest-digest"
ANN_PROVENANCE_REF = "io.stellaops.export.provenance-ref"
ANN_ID = "io.stellaops.export.id"
ANN_TENANT = "io.stellaops.export.tenant"
ANN_CREATED = "org.opencontainers.image.created"

STELLAOPS_KEYS: tuple[str, ...] = (
    ANN_ID,
    ANN_MANIFEST_DIGEST,
    ANN_PROFILE,
    ANN_PROVENANCE_REF,
    ANN_RUN,
    ANN_TENANT,
)
"""Every io.stellaops.* annotation the artifact carries (sorted)."""

_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:+-]*")  # fullmatch: "$" lets a newline through
_HEX64_RE = re.compile(r"(sha256:)?([a-f0-9]{64})")


def parse_user_annotations(items: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """Parse ``--annotation K=V`` items (split at the first ``=``; ``V`` may be empty), or take a
    mapping ``{K: V}`` (the Python API), checked by the same rules.

    Refused with exit 2: no ``=``, an empty key or one with spaces/odd characters, a key
    under the reserved ``io.stellaops.`` prefix, the same key twice with different values.
    """
    if isinstance(items, Mapping):
        for k, v in items.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise InvalidInputError(f"annotation {k!r}: keys and values must be strings")
        items = [f"{k}={v}" for k, v in items.items()]
    elif isinstance(items, str):
        items = [items]
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(
                f"--annotation {item!r}: expected KEY=VALUE",
                hint="write e.g. --annotation org.opencontainers.image.source=https://example.com/repo",
            )
        if not _KEY_RE.fullmatch(key):
            raise InvalidInputError(
                f"--annotation {item!r}: key {key!r} must start with a letter or digit and contain only "
                "letters, digits and . _ / : + -",
            )
        if key.startswith(RESERVED_PREFIX):
            raise InvalidInputError(
                f"--annotation {item!r}: keys under {RESERVED_PREFIX!r} are reserved; stella-oci computes "
                "them from export.json",
                hint="drop the annotation, or use your own prefix (e.g. com.example.)",
            )
        if key in out and out[key] != value:
            raise InvalidInputError(
                f"--annotation {key}: given twice with different values ({out[key]!r} and {value!r})"
            )
        out[key] = value
    return dict(sorted(out.items()))


def _normalize_digest(digest: str) -> str:
    m = _HEX64_RE.fullmatch(digest)
    if not m:
        raise InvalidInputError(f"provenance.json digest {digest!r} is not a sha256 digest")
    return "sha256:" + m.group(2)


def _base_annotations(export: ExportManifest) -> dict[str, str]:
    """The annotations that depend on export.json only (all but provenance-ref)."""
    return {
        ANN_PROFILE: export.profile_label,
        ANN_RUN: export.run_label,
        ANN_MANIFEST_DIGEST: export.manifest_digest,
        ANN_ID: export.export_id,
        ANN_TENANT: export.tenant,
        ANN_CREATED: export.generated_at,
    }


def compute_annotations(
    export: ExportManifest,
    *,
    provenance_digest: str | None,
    provenance_ref: str | None,
    user: Mapping[str, str],
) -> dict[str, str]:
    """The manifest annotations for pushing ``export`` (CONTRACT section 2), sorted by key.

    ``provenance_digest`` is the digest of the bundle's provenance.json (``sha256:<hex>``)
    or None; ``provenance_ref`` is the ``--provenance-ref`` option or None; ``user`` holds
    the ``--annotation`` pairs. Raises :class:`InvalidInputError` (exit 2) when no
    provenance reference can be found, when ``integrity.oci.annotations`` disagrees with the
    computed values, or when a user annotation is reserved or contradicts a computed value.
    """
    result = _base_annotations(export)
    integrity = export.integrity_annotations

    # the first of: export.json integrity.oci.annotations, export.json attestations.provenanceRef,
    # the bundle's provenance.json, --provenance-ref
    prov = (
        integrity.get(ANN_PROVENANCE_REF)
        or export.provenance_ref
        or (_normalize_digest(provenance_digest) if provenance_digest else None)
        or provenance_ref
        or None
    )
    if prov is None:
        raise InvalidInputError(
            f"export.json: no provenance reference for the {ANN_PROVENANCE_REF} annotation",
            hint="add provenance.json to the bundle, set attestations.provenanceRef or "
            f"integrity.oci.annotations[{ANN_PROVENANCE_REF!r}] in export.json, or pass --provenance-ref REF",
        )
    result[ANN_PROVENANCE_REF] = prov

    for key, value in sorted(integrity.items()):
        if key in result:
            if value != result[key]:
                raise InvalidInputError(
                    f"export.json integrity.oci.annotations[{key!r}] is {value!r}, but the value computed "
                    f"from export.json is {result[key]!r}",
                    hint="regenerate the integrity block of export.json (the manifest-digest is the SHA-256 "
                    "of the RFC 8785 form of export.json without its integrity member)",
                    details={"annotation": key, "expected": result[key], "found": value},
                )
        elif key.startswith(RESERVED_PREFIX):
            raise InvalidInputError(
                f"export.json integrity.oci.annotations[{key!r}]: unknown annotation under the reserved "
                f"prefix {RESERVED_PREFIX!r}",
                hint=f"stella-oci only knows {', '.join(STELLAOPS_KEYS)}; remove the others",
            )
        else:
            result[key] = value

    for key, value in sorted(user.items()):
        if key.startswith(RESERVED_PREFIX):
            raise InvalidInputError(
                f"--annotation {key}={value}: keys under {RESERVED_PREFIX!r} are reserved; stella-oci "
                "computes them from export.json",
            )
        if key in result and result[key] != value:
            raise InvalidInputError(
                f"--annotation {key}={value}: conflicts with {result[key]!r}, which comes from export.json",
                hint="drop the annotation, or change export.json",
            )
        result[key] = value
    return dict(sorted(result.items()))


def _expected_annotations(export: ExportManifest) -> tuple[dict[str, str], list[dict[str, str | None]]]:
    """What a pushed manifest must carry for ``export``, and the disagreements inside export.json
    itself (``integrity.oci.annotations`` against the computed values)."""
    expected = _base_annotations(export)
    integrity = export.integrity_annotations
    prov = integrity.get(ANN_PROVENANCE_REF) or export.provenance_ref
    if prov is not None:
        expected[ANN_PROVENANCE_REF] = prov
    problems: list[dict[str, str | None]] = []
    for key, value in sorted(integrity.items()):
        if key in expected and expected[key] != value:
            problems.append(
                {
                    "annotation": f"export.json integrity.oci.annotations[{key}]",
                    "expected": expected[key],
                    "found": value,
                }
            )
        expected.setdefault(key, value)
    return expected, problems


def check_annotations(
    annotations: Mapping[str, str], export: ExportManifest, *, provenance_digest: str | None
) -> None:
    """Check the annotations of a pulled manifest against its export.json (CONTRACT section 5,
    step 3). Raises :class:`VerificationError` (exit 3) listing every annotation that is
    missing or differs, with the expected and found values.

    ``provenance_digest`` (the provenance.json layer's digest, if any) is accepted for
    symmetry with :func:`compute_annotations`; when export.json names no provenance
    reference, the pushed value may have come from ``--provenance-ref``, so only a
    non-empty value is required then.
    """
    del provenance_digest  # see docstring: any non-empty value is acceptable in that case
    expected, problems = _expected_annotations(export)
    for key in sorted(set(expected) | set(STELLAOPS_KEYS)):
        found = annotations.get(key)
        want = expected.get(key)
        if found is None:
            problems.append({"annotation": key, "expected": want, "found": None})
        elif want is not None and found != want:
            problems.append({"annotation": key, "expected": want, "found": found})
        elif want is None and not found:
            problems.append({"annotation": key, "expected": "a non-empty value", "found": found})
    for key in sorted(annotations):
        if key.startswith(RESERVED_PREFIX) and key not in STELLAOPS_KEYS and key not in expected:
            problems.append({"annotation": key, "expected": None, "found": annotations[key]})
    if not problems:
        return

    def describe(p: dict[str, str | None]) -> str:
        if p["found"] is None:
            return f"{p['annotation']}: missing (expected {p['expected']!r})"
        if p["expected"] is None:
            return f"{p['annotation']}: unknown annotation under the reserved prefix (found {p['found']!r})"
        return f"{p['annotation']}: expected {p['expected']!r}, found {p['found']!r}"

    n = len(problems)
    raise VerificationError(
        f"manifest annotations do not match export.json ({n} problem{'s' if n != 1 else ''}):\n"
        + "\n".join("  " + describe(p) for p in problems),
        hint="the artifact was altered after it was pushed, "
        "or was not written by a StellaOps-compatible tool",
        details={"annotations": problems},
    )
