"""pull and verify: fetch an export artifact and prove nothing changed (CONTRACT section 5).

Both are copies through the engine (:meth:`~stella_oci.engine.CopyEngine.copy_graph`) into a
sink: a pull into a :class:`~stella_oci.targets.bundle.BundleSink` (every layer written under
the title it carried at push time, duplicate layers restored from the first copy), a verify
into a :class:`~stella_oci.targets.bundle.DiscardSink`. The StellaOps checks are the copy's
hooks (:class:`ExportChecks`). The order of the checks is the order of trust: the manifest
bytes against the pinned digest and the registry's Docker-Content-Digest; the manifest's
shape; export.json (read through the verifying reader, capped) against the schema and the
annotations; the layers against export.json's contents; the air-gap and signature checks;
then every blob, verified while it streams. A pull writes into a temporary directory beside
``--output`` and renames it only when all of that passed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stella_oci import interrupts
from stella_oci.errors import InvalidInputError, VerificationError, on_side
from stella_oci.export.annotations import ANN_MANIFEST_DIGEST, ARTIFACT_TYPE, check_annotations
from stella_oci.export.artifact import (
    MAX_EXPORT_JSON_BYTES,
    check_layers_against_export,
    check_manifest_shape,
    provenance_layer,
)
from stella_oci.export.bundle import EXPORT_JSON, load_export_json, scan_directory
from stella_oci.export.models import ExportManifest
from stella_oci.export.trivy import build_layout, check_trivy_root, is_trivy_manifest, pick_export_referrer
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.manifest import Descriptor, Manifest, parse_manifest, require_sha256
from stella_oci.oci.reference import Reference
from stella_oci.results import TransferStats, VerifyResult
from stella_oci.targets.base import ReadOnlyTarget, Target
from stella_oci.targets.bundle import BundleSink, DiscardSink
from stella_oci.targets.verified import read_manifest, write_blob
from stella_oci.verbs.airgap import AirgapCheck, AirgapOptions
from stella_oci.verbs.common import (
    RunOptions,
    as_reference,
    engine_for,
    layer_infos,
    open_source,
    selector_of,
    transfer_stats,
)

DEFAULT_PULL_CONCURRENCY = 3

#: The names of the checks, as the result's ``checks`` lists those that ran (docs/output.md).
CHECK_MANIFEST_BYTES = "manifest bytes hash to the manifest digest"
CHECK_PINNED = "manifest digest equals the pinned digest (@sha256: / --expect-digest)"
CHECK_DOCKER_CONTENT_DIGEST = "manifest digest equals the registry's Docker-Content-Digest"
CHECK_SHAPE = "mediaType, artifactType and config"
CHECK_ANNOTATIONS = "io.stellaops.* annotations against export.json"
CHECK_SCHEMA = "export.json against the v1alpha2 schema"
CHECK_LAYERS = "layers are exactly export.json, its contents, provenance and DSSE envelopes"
CHECK_PATHS = "safe paths"
CHECK_BLOBS = "every blob's digest and size, while streaming"
CHECK_FILES = "every listed file's digest and size; no file missing, none unlisted"
CHECK_BUNDLE_DIGEST = "the manifest this bundle pushes as equals --expect-digest"
CHECK_TRIVY_REFERRER = "the Trivy manifest's StellaOps export referrer found (referrers API or fallback tag)"
CHECK_TRIVY_LAYER = "the Trivy manifest: Trivy's config, one layer equal to the DB archive in export.json"
CHECK_SIGNATURES = "DSSE signatures and provenance bind to export.json (--trust-root)"


@dataclass
class FetchedExport:
    """What a pull or verify knows once the manifest and export.json passed their checks."""

    ref: Reference
    desc: Descriptor
    """The artifact manifest's descriptor (the subject of its referrers)."""
    manifest: Manifest
    model: ExportManifest
    """export.json. In a pull or verify (:class:`ExportChecks`) without its ``contents`` once the
    checks, extra checks included, have run."""
    src: ReadOnlyTarget | None = None
    """Where the artifact is read from (None for a local bundle directory)."""
    export_json: Path | None = None
    """The verified export.json on disk."""
    checks: list[str] = field(default_factory=list)
    """The checks that ran so far, in order."""


#: Called after the manifest and export.json passed, before the blobs move: the air-gap
#: (staleness, deltas) and signature checks hook in here. Returns members for the result
#: (``staleness``, ``provenance``, ``signatures``) and, under ``checks``, the names of the
#: checks it ran; raises to stop the pull.
ExtraCheck = Callable[[FetchedExport], dict[str, Any]]


@on_side("source")
def resolve_export(
    ref: Reference, src: ReadOnlyTarget, *, expect_digest: str | None
) -> tuple[Descriptor, bytes, list[str]]:
    """The manifest ``ref`` names, read through the verifying reader: its descriptor, its bytes
    (checked against the pinned digest and the registry's Docker-Content-Digest) and the names
    of the checks that ran."""
    pinned = [d for d in (ref.digest, expect_digest) if d]
    for d in pinned:
        require_sha256(d, "--expect-digest")
    if len(set(pinned)) > 1:
        raise InvalidInputError(
            f"{ref}: the reference pins {ref.digest} but --expect-digest is {expect_digest}"
        )
    desc = src.resolve(selector_of(ref, "pull"))
    if pinned and desc.digest != pinned[0]:
        raise VerificationError(
            f"{ref}: the manifest is {desc.digest}, but {pinned[0]} was expected",
            hint="the tag was moved or the content changed; pull by digest to get the pinned artifact",
            details={"expected": pinned[0], "found": desc.digest},
        )
    where = f"{ref.base()}@{desc.digest}"
    data = read_manifest(src, desc, what=f"manifest {where}")
    checks = [CHECK_MANIFEST_BYTES, *([CHECK_PINNED] if pinned else [])]
    last = getattr(src, "last_response", None)
    if getattr(last, "digest_header", None):
        checks.append(CHECK_DOCKER_CONTENT_DIGEST)
    if desc.media_type not in (mt.OCI_MANIFEST,):
        raise VerificationError(f"{where}: media type {desc.media_type!r}, expected {mt.OCI_MANIFEST!r}")
    return desc, data, checks


@on_side("source")
def export_graph(
    ref: Reference, src: ReadOnlyTarget, desc: Descriptor, data: bytes
) -> tuple[Descriptor, bytes, Manifest]:
    """The manifest whose graph holds export.json and every bundle file: ``desc`` itself, or for
    a Trivy-layout artifact its export referrer (export/trivy.py), read through the verifying
    reader; and ``data`` parsed (:func:`check_export` takes it: a 10,000-layer manifest is
    parsed once, not twice)."""
    where = f"{ref.base()}@{desc.digest}"
    manifest = parse_manifest(data, where)
    if not is_trivy_manifest(manifest):
        return desc, data, manifest
    ref_desc = pick_export_referrer(src.referrers(desc, ARTIFACT_TYPE), manifest, where)
    what = f"manifest {ref.base()}@{ref_desc.digest} (export referrer of {desc.digest})"
    return ref_desc, read_manifest(src, ref_desc, what=what), manifest


@on_side("source")
def check_export(
    ref: Reference,
    src: ReadOnlyTarget,
    desc: Descriptor,
    data: bytes,
    *,
    workdir: Path,
    checks: list[str],
    export_manifest: tuple[Descriptor, bytes] | None = None,
    parsed: Manifest | None = None,
) -> tuple[FetchedExport, list[Descriptor]]:
    """CONTRACT section 5 on a manifest already read: its shape, export.json (read through the
    verifying reader, at most MAX_EXPORT_JSON_BYTES, into ``workdir``) against the schema and
    the annotations, the layers against export.json. Returns what passed and the layers after
    export.json. For a Trivy-layout ``desc`` the checks run on its export referrer
    (``export_manifest`` when the caller has read it with :func:`export_graph`) and the Trivy
    manifest is checked against it. ``parsed``: ``data`` parsed already (by
    :func:`export_graph`)."""
    where = f"{ref.base()}@{desc.digest}"
    manifest = parsed if parsed is not None else parse_manifest(data, where)
    root = manifest
    if is_trivy_manifest(manifest):  # Trivy layout: export.json and the files are in the export referrer
        if export_manifest is None:
            ref_desc, ref_data, _ = export_graph(ref, src, desc, data)
        else:
            ref_desc, ref_data = export_manifest
        where = f"{ref.base()}@{ref_desc.digest} (export referrer of {desc.digest})"
        manifest = parse_manifest(ref_data, where)
        checks = [*checks, CHECK_TRIVY_REFERRER]
    export_layer = check_manifest_shape(manifest, where)
    export_path = workdir / EXPORT_JSON
    write_blob(src, export_layer, export_path, limit=MAX_EXPORT_JSON_BYTES, what=f"{where} layer export.json")
    try:
        _, model = load_export_json(export_path, source=f"{where} export.json")
    except InvalidInputError as exc:
        raise VerificationError(exc.message, hint=exc.hint, details=exc.details) from None
    prov = provenance_layer(manifest)
    check_annotations(manifest.annotations or {}, model, provenance_digest=prov.digest if prov else None)
    rest = check_layers_against_export(manifest, model, where)
    if root is not manifest:
        check_trivy_root(root, manifest, model, desc, f"{ref.base()}@{desc.digest}")
        checks = [*checks, CHECK_TRIVY_LAYER]
    checks = [*checks, CHECK_SHAPE, CHECK_SCHEMA, CHECK_ANNOTATIONS, CHECK_LAYERS, CHECK_PATHS]
    fetched = FetchedExport(ref, desc, manifest, model, src=src, export_json=export_path, checks=checks)
    return fetched, rest


def fetch_export(
    ref: Reference,
    src: ReadOnlyTarget,
    *,
    expect_digest: str | None,
    workdir: Path,
) -> tuple[FetchedExport, list[Descriptor]]:
    """:func:`resolve_export` then :func:`check_export` (copy checks an export this way)."""
    desc, data, checks = resolve_export(ref, src, expect_digest=expect_digest)
    return check_export(ref, src, desc, data, workdir=workdir, checks=checks)


class ExportSink(Target, Protocol):
    """Where a pull or verify copies to: a :class:`~stella_oci.targets.base.Target` that is
    told which layers to expect and which blob the checks already read (export.json)."""

    def expect(self, layers: Sequence[Descriptor]) -> None: ...

    def adopt(self, desc: Descriptor) -> None: ...


class ExportChecks:
    """The StellaOps checks of pull and verify as hooks of the engine's copy.

    ``before_blobs`` (the manifest was read and verified, no blob moved): CONTRACT section 5
    (:func:`check_export`), then the extra checks (air gap, signatures); the sink learns the
    layers and takes export.json, already read and verified, as written. ``after_blobs``
    (every blob arrived, verified while it streamed): the blob check is recorded.
    """

    def __init__(
        self, ref: Reference, src: ReadOnlyTarget, sink: ExportSink, *, workdir: Path, checks: list[str],
        extra_checks: Sequence[ExtraCheck], subject: tuple[Descriptor, bytes] | None = None,
        parsed: Manifest | None = None,
    ) -> None:
        self.subject = subject
        """The Trivy manifest when the graph copied is its export referrer (:func:`export_graph`)."""
        self.parsed = parsed
        """The artifact's manifest (``subject``, else the root the engine copies) parsed already
        (:func:`export_graph`): :func:`check_export` takes it instead of parsing it again."""
        self.ref = ref
        self.src = src
        self.sink = sink
        self.workdir = workdir
        self.checks = checks
        self.extra_checks = extra_checks
        self.fetched: FetchedExport | None = None
        self.extra: dict[str, Any] = {}
        self.root_children: list[Descriptor] | None = None
        """What the root manifest points at, parsed once by the checks; the engine reuses it."""

    def before_blobs(self, root: Descriptor, data: bytes) -> None:
        parsed, self.parsed = self.parsed, None
        if self.subject is not None:  # the graph is the export referrer of the Trivy manifest
            fetched, _ = check_export(
                self.ref, self.src, *self.subject, workdir=self.workdir, checks=self.checks,
                export_manifest=(root, data), parsed=parsed,
            )
        else:
            fetched, _ = check_export(
                self.ref, self.src, root, data, workdir=self.workdir, checks=self.checks, parsed=parsed
            )
        self.extra = run_checks(self.extra_checks, fetched)
        # export.json's contents (one entry per file) were checked against the layers, and the
        # copy checks every file against its layer: the model keeps the rest (what the result
        # and the ledger read), not 10,000 entries and their strings while the blobs move and
        # the result is built (issue 15).
        fetched.model = fetched.model.model_copy(update={"contents": []})
        with on_side("destination"):
            self.sink.expect(fetched.manifest.layers)
            self.sink.adopt(fetched.manifest.layers[0])
        self.fetched = fetched
        self.root_children = [fetched.manifest.config, *fetched.manifest.layers]  # (parsed from ``data``)

    def after_blobs(self, root: Descriptor, data: bytes) -> None:
        if self.fetched is not None:
            self.fetched.checks.append(CHECK_BLOBS)

    def done(self) -> FetchedExport:
        """What passed, once the copy is complete (export.json's model without its contents:
        :meth:`before_blobs`)."""
        if self.fetched is None:  # pragma: no cover - before_blobs raises or sets it
            raise VerificationError(f"{self.ref}: the export was not checked")
        self.root_children = None
        self.subject = None
        return self.fetched


def _result(f: FetchedExport, output: str | None, stats: Any, extra: dict[str, Any]) -> VerifyResult:
    from stella_oci.verbs.failover import served_by

    return VerifyResult(
        served_by=served_by(f.src) if f.src is not None else None,
        reference=f"{f.ref.base()}@{f.desc.digest}",
        digest=f.desc.digest,
        export_manifest_digest=(f.manifest.annotations or {}).get(ANN_MANIFEST_DIGEST, ""),
        export_id=f.model.export_id,
        profile=f.model.profile_label,
        tenant=f.model.tenant,
        generated_at=f.model.generated_at,
        annotations=dict(f.manifest.annotations or {}),
        layers=layer_infos(f.manifest.layers),
        checks=list(f.checks),
        output=output,
        transfer=stats or TransferStats(),
        **extra,
    )


def run_checks(checks: Sequence[ExtraCheck], fetched: FetchedExport) -> dict[str, Any]:
    """Run the extra checks; their result members (the names of what ran go to ``fetched.checks``)."""
    extra: dict[str, Any] = {}
    for check in checks:
        members = dict(check(fetched))
        fetched.checks += members.pop("checks", [])
        extra.update(members)
    return extra


def pull(
    reference: str | Reference,
    output: str | Path,
    *,
    expect_digest: str | None = None,
    run: RunOptions | None = None,
    airgap: AirgapOptions | None = None,
    checks: Sequence[ExtraCheck] = (),
) -> VerifyResult:
    """Fetch and verify an export into ``output`` (a new or empty directory).

    Its staleness is checked when ``airgap.staleness_config`` is given. The pull is recorded
    as an import only when the caller asks for it: ``airgap.ledger`` names a ledger, or
    ``airgap.record_in_default_ledger`` (the CLI's ``pull``) says to use the default one
    ($STELLA_OCI_LEDGER or the user data dir); a recorded import also checks that a
    ``mirror:delta`` export's base was imported before. ``checks`` run after the manifest and
    export.json passed (signatures, for instance).
    """
    run = run or RunOptions()
    ref = as_reference(reference)
    record_import = airgap is not None and (airgap.ledger is not None or airgap.record_in_default_ledger)
    gap = AirgapCheck(airgap or AirgapOptions(), is_import=record_import)
    out = Path(output)
    src = open_source(ref, run)  # first: an --offline refusal leaves no partial directory behind
    try:
        sink = BundleSink(out)
    except BaseException:
        src.close()
        raise
    try:
        desc, data, ran = resolve_export(ref, src, expect_digest=expect_digest)
        graph, graph_data, parsed = export_graph(ref, src, desc, data)
        hooks = ExportChecks(
            ref, src, sink, workdir=sink.tmp, checks=ran, extra_checks=[gap, *checks],
            subject=(desc, data) if graph.digest != desc.digest else None, parsed=parsed,
        )
        del parsed  # (the checks hold it while they need it)
        engine = engine_for(run, DEFAULT_PULL_CONCURRENCY)
        stats = engine.copy_graph(src, sink, graph, root_data=graph_data, hooks=hooks)
        del data, graph_data  # checked and copied: not held while the result is built (issue 15)
        sink.release()
        fetched, extra = hooks.done(), hooks.extra
        result = _result(fetched, str(out), transfer_stats(stats), extra)
        # Everything that can fail is checked before the rename: the ledger is written (and
        # locked) first, committed after it; a signal cannot split the two.
        importing = (
            gap.importing(fetched, extra.get("provenance"), reference=result.reference)
            if record_import
            else nullcontext(lambda: None)
        )
        with importing as record:
            with interrupts.deferred():
                with on_side("destination"):
                    sink.commit()
                record()
                sink.keep()
    except BaseException:
        sink.abort()
        raise
    finally:
        src.close()
    return result


def verify(
    reference: str | Reference | Path,
    *,
    expect_digest: str | None = None,
    run: RunOptions | None = None,
    airgap: AirgapOptions | None = None,
    checks: Sequence[ExtraCheck] = (),
) -> VerifyResult:
    """The checks of :func:`pull`, writing nothing. A local directory is verified as a bundle.

    With ``airgap`` the export's staleness is checked (and, with an explicit ledger, its
    delta base); nothing is recorded: a verify is not an import.
    """
    run = run or RunOptions()
    all_checks: list[ExtraCheck] = [*([AirgapCheck(airgap, is_import=False)] if airgap else []), *checks]
    if isinstance(reference, Path) or (
        isinstance(reference, str)
        and not reference.startswith(("oci:", "oci-archive:"))
        and Path(reference).is_dir()
    ):
        return verify_directory(Path(reference), expect_digest=expect_digest, checks=all_checks)
    if isinstance(reference, str):
        _refuse_local_non_bundle(reference)
    ref = as_reference(reference)
    src = open_source(ref, run)
    try:
        with interrupts.temp_dir("stella-oci-verify-") as workdir:
            desc, data, ran = resolve_export(ref, src, expect_digest=expect_digest)
            graph, graph_data, parsed = export_graph(ref, src, desc, data)
            discard = DiscardSink()
            hooks = ExportChecks(
                ref, src, discard, workdir=workdir, checks=ran, extra_checks=all_checks,
                subject=(desc, data) if graph.digest != desc.digest else None, parsed=parsed,
            )
            del parsed  # (the checks hold it while they need it)
            engine = engine_for(run, DEFAULT_PULL_CONCURRENCY)
            stats = engine.copy_graph(src, discard, graph, root_data=graph_data, hooks=hooks)
            del data, graph_data  # checked and copied: not held while the result is built (issue 15)
    finally:
        src.close()
    return _result(hooks.done(), None, transfer_stats(stats), hooks.extra)


def _refuse_local_non_bundle(target: str) -> None:
    """A TARGET that names a local file, or a path that does not exist, is not a reference:
    say so (before: './nope' was "invalid reference './nope': '.' is not a registry host")."""
    if target.startswith(("oci:", "oci-archive:")):
        return
    path = Path(target).expanduser()
    if path.is_file():
        inside = "the directory holding it" if path.name == "export.json" else "a bundle directory"
        raise InvalidInputError(
            f"{target}: a file; verify takes a bundle directory (export.json and its files) or a reference",
            hint=f"give {inside} (a .tar bundle: extract it first), or oci-archive:FILE for an OCI archive",
        )
    if target.startswith((".", "/", "~")) and not path.exists():  # no registry host starts so
        raise InvalidInputError(
            f"{target}: no such bundle directory",
            hint="give the directory a pull wrote, or a reference such as registry.example/repo:tag",
        )


def verify_directory(
    root: Path, *, expect_digest: str | None = None, checks: Sequence[ExtraCheck] = ()
) -> VerifyResult:
    """Verify a bundle directory (e.g. one pulled earlier): schema, paths, every file's digest.

    With ``expect_digest`` the manifest that pushing this directory would produce (without
    extra ``--annotation`` / ``--provenance-ref``) must have that digest.
    """
    bundle = scan_directory(root, mismatch_error=VerificationError)
    layout = build_layout(bundle, user_annotations={}, provenance_ref=None)
    artifact = layout.export
    ran = [CHECK_SCHEMA, CHECK_PATHS, CHECK_FILES]
    if expect_digest:
        require_sha256(expect_digest, "--expect-digest")
        if layout.root.descriptor.digest != expect_digest:
            raise VerificationError(
                f"{root}: this bundle pushes as {layout.root.descriptor.digest}, not {expect_digest}",
                hint="a push with extra --annotation or --provenance-ref values gives another digest",
            )
        ran.append(CHECK_BUNDLE_DIGEST)
    fetched = FetchedExport(
        Reference(transport="dir", path=str(root)),
        layout.root.descriptor,
        artifact.manifest,
        bundle.manifest,
        export_json=root / EXPORT_JSON,
        checks=ran,
    )
    extra = run_checks(checks, fetched)
    result = _result(fetched, None, None, extra)
    result.reference = str(root)
    return result
