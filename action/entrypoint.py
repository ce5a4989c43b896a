"""Step 2 of the stella-oci GitHub Action (action.yml): run the CLI for the action's inputs
(``command``: push, pull, verify or copy).

The inputs arrive as environment variables (``INPUT_COMMAND``, ``INPUT_TAGS``, ...) that
action.yml sets with ``env:``; no input is ever pasted into a shell line, and the CLI is run
with an argument list, never through a shell. So a tag such as ``v1"; touch /tmp/pwned`` is
data: the CLI refuses it as an invalid tag.

What it writes, the way the runner expects:

* ``::add-mask::`` for the password before anything else; the password goes to the CLI on
  stdin (``--password-stdin``), never on its command line;
* the CLI's own output between ``::stop-commands::TOKEN`` and ``::TOKEN::``, so nothing a
  registry or a bundle puts into a message can act as a workflow command;
* outputs ``digest`` (the OCI manifest digest), ``reference``, ``export-manifest-digest`` (the
  io.stellaops annotation; also under its old name ``manifest-digest``) to ``$GITHUB_OUTPUT``
  with the multiline-safe ``name<<DELIMITER`` syntax;
* a Markdown table of what was pushed, pulled, verified or copied to ``$GITHUB_STEP_SUMMARY``,
  with the layers, the referrers (and cosign tags) and the signature results;
* a failure as ``::error title=...::message`` (escaped: ``%25``, ``%0D``, ``%0A``), and the
  CLI's exit code as this script's exit code (docs/exit-codes.md).

Only the standard library is used: the script runs in the virtual environment that step 1
(action/install.sh) made, with that environment's interpreter.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

COMMANDS = ("push", "pull", "verify", "copy")
FORMATS = ("text", "json")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0", ""})
EXIT_INVALID_INPUT = 2
EXIT_INTERNAL = 1


class ActionInputError(Exception):
    """An input of the action that cannot be used (exit 2, like the CLI's invalid input)."""

    exit_code = EXIT_INVALID_INPUT


# --------------------------------------------------------------------------- workflow commands


def escape_data(value: str) -> str:
    """Escape the message part of a workflow command (``%``, CR, LF), as the runner unescapes it."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a workflow command property value (``title=...``): also ``:`` and ``,``."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def error_command(message: str, title: str) -> str:
    return f"::error title={escape_property(title)}::{escape_data(message)}"


def mask_commands(secret: str) -> list[str]:
    """``::add-mask::`` lines for ``secret``: the whole value and, for a multi-line one, each line."""
    secret = secret.strip("\r\n")
    if not secret:
        return []
    values = [secret]
    if "\n" in secret or "\r" in secret:
        values += [line for line in re.split(r"\r\n|\r|\n", secret) if line.strip()]
    seen: list[str] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return [f"::add-mask::{escape_data(v)}" for v in seen]


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Inputs:
    command: str
    bundle: str = ""
    reference: str = ""
    destination: str = ""
    tags: tuple[str, ...] = ()
    annotations: tuple[str, ...] = ()
    username: str = ""
    password: str = field(default="", repr=False)
    registry_config: str = ""
    registry_mirrors: tuple[str, ...] = ()
    attach_signatures: bool = False
    trust_root: str = ""
    require_signature: bool = False
    staleness_config: str = ""
    time_anchor: str = ""
    certificate_identity: str = ""
    certificate_oidc_issuer: str = ""
    time_anchor_trust_root: str = ""
    require_time_anchor: bool = False
    expect_digest: str = ""
    output: str = ""
    plain_http: bool = False
    insecure: bool = False
    ca_file: str = ""
    format: str = "text"


def split_list(value: str) -> list[str]:
    """Tags, mirrors: items separated by newlines or commas, blanks dropped."""
    return [item.strip() for item in re.split(r"[,\r\n]", value) if item.strip()]


def split_mirrors(value: str) -> list[str]:
    """``SOURCE=MIRROR[,MIRROR...]`` items, one per line or comma-separated: a comma piece
    without ``=`` is one more mirror of the item before it (tried in order)."""
    items: list[str] = []
    for piece in split_list(value):
        if "=" not in piece and items:
            items[-1] += "," + piece
        else:
            items.append(piece)
    return items


def split_annotations(value: str) -> list[str]:
    """``KEY=VALUE`` items, one per line; when the input has no line break, commas separate them.

    (So a value with a comma in it is written one annotation per line.)"""
    text = value.strip()
    if not text:
        return []
    parts = re.split(r"\r\n|\r|\n", text) if re.search(r"[\r\n]", text) else text.split(",")
    items = [p.strip() for p in parts if p.strip()]
    for item in items:
        key = item.split("=", 1)[0].strip()
        if "=" not in item or not key:
            raise ActionInputError(
                f"input 'annotations': {item!r} is not KEY=VALUE "
                "(one annotation per line; commas separate them only when the input is one line)"
            )
    return items


def parse_bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ActionInputError(f"input '{name}': {value!r} is not a boolean (use true or false)")


def _get(env: Mapping[str, str], name: str) -> str:
    return env.get("INPUT_" + name.upper().replace("-", "_"), "").strip()


def read_inputs(env: Mapping[str, str]) -> Inputs:
    """The action's inputs from ``INPUT_*`` variables, checked for the command they go with."""
    command = _get(env, "command").lower() or "push"
    if command not in COMMANDS:
        raise ActionInputError(f"input 'command': {command!r} is not one of push, pull, verify, copy")
    fmt = _get(env, "format").lower() or "text"
    if fmt not in FORMATS:
        raise ActionInputError(f"input 'format': {fmt!r} is not text or json")
    password = env.get("INPUT_PASSWORD", "").strip("\r\n")
    if "\n" in password or "\r" in password:
        raise ActionInputError("input 'password' has a line break inside: give the token on one line")
    inputs = Inputs(
        command=command,
        bundle=_get(env, "bundle"),
        reference=_get(env, "reference"),
        destination=_get(env, "destination"),
        tags=tuple(split_list(_get(env, "tags"))),
        annotations=tuple(split_annotations(env.get("INPUT_ANNOTATIONS", ""))),
        username=_get(env, "username"),
        password=password,
        registry_config=_get(env, "registry-config"),
        registry_mirrors=tuple(split_mirrors(_get(env, "registry-mirrors"))),
        attach_signatures=parse_bool("attach-signatures", _get(env, "attach-signatures")),
        trust_root=_get(env, "trust-root"),
        require_signature=parse_bool("require-signature", _get(env, "require-signature")),
        staleness_config=_get(env, "staleness-config"),
        time_anchor=_get(env, "time-anchor"),
        certificate_identity=_get(env, "certificate-identity"),
        certificate_oidc_issuer=_get(env, "certificate-oidc-issuer"),
        time_anchor_trust_root=_get(env, "time-anchor-trust-root"),
        require_time_anchor=parse_bool("require-time-anchor", _get(env, "require-time-anchor")),
        expect_digest=_get(env, "expect-digest"),
        output=_get(env, "output"),
        plain_http=parse_bool("plain-http", _get(env, "plain-http")),
        insecure=parse_bool("insecure", _get(env, "insecure")),
        ca_file=_get(env, "ca-file"),
        format=fmt,
    )
    _check_combination(inputs)
    return inputs


def _check_combination(i: Inputs) -> None:
    def refuse(name: str) -> None:
        raise ActionInputError(f"input '{name}' is only for command: push, not {i.command}")

    if i.command != "copy" and i.destination:
        raise ActionInputError(f"input 'destination' is only for command: copy, not {i.command}")
    if i.command == "push":
        if not i.bundle:
            raise ActionInputError("command: push needs the input 'bundle' (a directory or archive)")
        for name, value in (
            ("expect-digest", i.expect_digest),
            ("output", i.output),
            ("trust-root", i.trust_root),
            ("require-signature", i.require_signature),
            ("staleness-config", i.staleness_config),
            ("time-anchor", i.time_anchor),
            ("certificate-identity", i.certificate_identity),
            ("certificate-oidc-issuer", i.certificate_oidc_issuer),
            ("time-anchor-trust-root", i.time_anchor_trust_root),
            ("require-time-anchor", i.require_time_anchor),
        ):
            if value:
                raise ActionInputError(f"input '{name}' is for pull, verify and copy, not push")
        return
    if i.tags:
        refuse("tags")
    if i.annotations:
        refuse("annotations")
    if i.attach_signatures:
        refuse("attach-signatures")
    if i.command == "copy":
        if not i.reference or not i.destination:
            raise ActionInputError("command: copy needs the inputs 'reference' (the source) and 'destination'")
        for name, value in (("bundle", i.bundle), ("output", i.output), ("expect-digest", i.expect_digest)):
            if value:
                raise ActionInputError(f"input '{name}' is not for copy")
        return
    if i.command == "pull":
        _check_pull(i)
    else:
        _check_verify(i)


def _check_pull(i: Inputs) -> None:
    if not i.reference:
        raise ActionInputError("command: pull needs the input 'reference'")
    if not i.output:
        raise ActionInputError("command: pull needs the input 'output' (a new or empty directory)")
    if i.bundle:
        raise ActionInputError("input 'bundle' is for push and verify, not pull")


def _check_verify(i: Inputs) -> None:
    if i.output:
        raise ActionInputError("input 'output' is for pull, not verify")
    if bool(i.reference) == bool(i.bundle):
        raise ActionInputError(
            "command: verify needs exactly one of the inputs 'reference' (in a registry) "
            "and 'bundle' (a directory)"
        )


def pinned_reference(reference: str, digest: str) -> str:
    """``reference@digest`` when ``reference`` names a registry repository with neither a tag
    nor a digest and a digest is expected; otherwise ``reference`` unchanged.

    So ``reference: host/repo`` plus ``expect-digest: sha256:...`` reads exactly that manifest
    (the CLI itself wants a tag or a digest for pull and verify)."""
    if not digest or not reference or "@" in reference or reference.startswith(("oci:", "oci-archive:")):
        return reference
    if "/" not in reference or ":" in reference.rsplit("/", 1)[1]:
        return reference
    return f"{reference}@{digest}"


def build_argv(i: Inputs, python: str | None = None) -> list[str]:
    """The CLI's argument list. Values travel as ``--opt=value`` and positionals after ``--``,
    so no input can be taken for an option; the password is not in it (stdin)."""
    argv = [python or sys.executable, "-m", "stella_oci", i.command, "--format=json"]
    if i.plain_http:
        argv.append("--plain-http")
    if i.insecure:
        argv.append("--insecure")
    if i.ca_file:
        argv.append(f"--ca-file={i.ca_file}")
    if i.registry_config:
        argv.append(f"--registry-config={i.registry_config}")
    argv += [f"--registry-mirror={m}" for m in i.registry_mirrors]
    if i.username:
        argv.append(f"--username={i.username}")
    if i.password:
        argv.append("--password-stdin")
    if i.trust_root:
        argv.append(f"--trust-root={i.trust_root}")
    if i.require_signature:
        argv.append("--require-signature")
    if i.staleness_config:
        argv.append(f"--staleness-config={i.staleness_config}")
    if i.time_anchor:
        argv.append(f"--time-anchor={i.time_anchor}")
    if i.certificate_identity:
        argv.append(f"--certificate-identity={i.certificate_identity}")
    if i.certificate_oidc_issuer:
        argv.append(f"--certificate-oidc-issuer={i.certificate_oidc_issuer}")
    if i.time_anchor_trust_root:
        argv.append(f"--time-anchor-trust-root={i.time_anchor_trust_root}")
    if i.require_time_anchor:
        argv.append("--require-time-anchor")
    if i.command == "push":
        if i.attach_signatures:
            argv.append("--attach-signatures")
        argv += [f"--tag={t}" for t in i.tags]
        argv += [f"--annotation={a}" for a in i.annotations]
        argv += ["--", i.bundle] + ([i.reference] if i.reference else [])
    elif i.command == "copy":
        argv += ["--", i.reference, i.destination]
    elif i.command == "pull":
        if i.expect_digest:
            argv.append(f"--expect-digest={i.expect_digest}")
        argv += [f"--output={i.output}", "--", pinned_reference(i.reference, i.expect_digest)]
    else:
        if i.expect_digest:
            argv.append(f"--expect-digest={i.expect_digest}")
        target = pinned_reference(i.reference, i.expect_digest) if i.reference else i.bundle
        argv += ["--", target]
    return argv


# --------------------------------------------------------------------------- outputs


def output_block(name: str, value: str) -> str:
    """``name<<DELIM\\nvalue\\nDELIM\\n`` with a delimiter that does not occur in ``value``."""
    while True:
        delim = f"ghadelimiter_{secrets.token_hex(16)}"
        if delim not in value:
            return f"{name}<<{delim}\n{value}\n{delim}\n"


def result_outputs(doc: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, key in (
        ("digest", "digest"),
        ("reference", "reference" if "reference" in doc else "destination"),  # copy: where it went
        ("export-manifest-digest", "exportManifestDigest"),
        ("manifest-digest", "exportManifestDigest"),  # deprecated name of export-manifest-digest
    ):
        value = doc.get(key)
        if isinstance(value, str) and value:
            out[name] = value
    return out


def write_outputs(path: str, outputs: Mapping[str, str]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for name, value in outputs.items():
            fh.write(output_block(name, value))


# --------------------------------------------------------------------------- summary


def md(value: object) -> str:
    """A table cell: HTML-escaped, ``|`` escaped, on one line, as code."""
    text = html.escape(str(value), quote=False).replace("|", "&#124;")
    text = text.replace("\r", " ").replace("\n", " ")
    return f"<code>{text}</code>" if text else ""


def _size(n: object) -> str:
    if not isinstance(n, int):
        return ""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    v = float(n)
    for unit in units:
        if v < 1024 or unit == units[-1]:
            return f"{n} B" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return f"{n} B"  # pragma: no cover


_VERBS = {"push": "pushed", "pull": "pulled and verified", "verify": "verified", "copy": "copied"}


def success_summary(i: Inputs, doc: Mapping[str, Any]) -> str:
    layers = [x for x in doc.get("layers") or [] if isinstance(x, dict)]
    total = sum(x.get("size", 0) for x in layers if isinstance(x.get("size"), int))
    rows: list[tuple[str, object]] = [
        ("Reference", doc.get("reference", doc.get("destination", ""))),
        ("Digest", doc.get("digest", "")),
    ]
    if i.command == "copy":
        rows.insert(0, ("Source", doc.get("source", "")))
    if i.command == "push":
        rows.append(("Tags", ", ".join(str(t) for t in doc.get("tags") or [])))
    if i.command == "pull":
        rows.append(("Written to", i.output))
    if doc.get("servedBy"):
        rows.append(("Served by mirror", doc["servedBy"]))
    if i.command != "copy":
        rows += [
            ("Export", doc.get("exportId", "")),
            ("Profile", doc.get("profile", "")),
        ]
    if doc.get("tenant"):
        rows.append(("Tenant", doc["tenant"]))
    if doc.get("generatedAt"):
        rows.append(("Generated", doc["generatedAt"]))
    if doc.get("exportManifestDigest"):
        rows.append(("Export manifest digest (export.json)", doc["exportManifestDigest"]))
    if layers:
        rows.append(("Layers", f"{len(layers)} ({_size(total)})"))
    transfer = doc.get("transfer")
    if i.command in ("push", "copy") and isinstance(transfer, dict):
        rows.append(
            (
                "Transfer",
                f"{transfer.get('uploaded', 0)} uploaded, {transfer.get('skipped', 0)} already there, "
                f"{transfer.get('mounted', 0)} mounted, {_size(transfer.get('bytes', 0))} sent",
            )
        )
    lines = [f"### stella-oci {i.command}: {_VERBS[i.command]}", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {md(value)} |" for name, value in rows]
    annotations = doc.get("annotations")
    if isinstance(annotations, dict) and annotations:
        lines += ["", "<details><summary>Annotations</summary>", "", "| key | value |", "|---|---|"]
        lines += [f"| {md(k)} | {md(v)} |" for k, v in sorted(annotations.items())]
        lines += ["", "</details>"]
    if layers:
        lines += ["", "<details><summary>Layers</summary>", "", "| path | media type | size | digest |"]
        lines.append("|---|---|---:|---|")
        for x in layers:
            lines.append(
                f"| {md(x.get('path', ''))} | {md(x.get('mediaType', ''))} | {_size(x.get('size'))} "
                f"| {md(x.get('digest', ''))} |"
            )
        lines += ["", "</details>"]
    lines += _referrers_summary(doc) + _signatures_summary(doc)
    checks = doc.get("checks")
    if isinstance(checks, list) and checks:
        lines += ["", "Checks passed:", ""] + [f"- {html.escape(str(c), quote=False)}" for c in checks]
    return "\n".join(lines) + "\n\n"


def _referrers_summary(doc: Mapping[str, Any]) -> list[str]:
    """The referrers pushed or copied along, and cosign's tag-scheme manifests (copy)."""
    rows = [x for x in doc.get("referrers") or [] if isinstance(x, dict)]
    cosign = [x for x in doc.get("cosignTags") or [] if isinstance(x, dict)]
    if not rows and not cosign:
        return []
    lines = ["", "<details open><summary>Referrers</summary>", "", "| artifact type | digest | title |", "|---|---|---|"]
    for x in rows:
        title = (x.get("annotations") or {}).get("org.opencontainers.image.title", "")
        lines.append(f"| {md(x.get('artifactType', ''))} | {md(x.get('digest', ''))} | {md(title)} |")
    for x in cosign:
        lines.append(f"| {md('cosign tag ' + str(x.get('tag', '')))} | {md(x.get('digest', ''))} | |")
    return [*lines, "", "</details>"]


def _signatures_summary(doc: Mapping[str, Any]) -> list[str]:
    """What the signature checks found (trust-root / require-signature)."""
    sig = doc.get("signatures")
    if not isinstance(sig, dict):
        return []
    envelopes = [x for x in sig.get("envelopes") or [] if isinstance(x, dict)]
    stella = sig.get("stellaSignature")
    if isinstance(stella, dict):
        envelopes.append(stella)
    lines = [
        "",
        f"Signatures: {sig.get('verifiedCount', 0)} verified"
        + (" (required)" if sig.get("required") else ""),
        "",
        "| document | status | key | binds to export.json |",
        "|---|---|---|---|",
    ]
    for e in envelopes:
        lines.append(
            f"| {md(e.get('name', ''))} | {md(e.get('status', ''))} | {md(e.get('keyName') or e.get('keyId') or '')} "
            f"| {md('yes' if e.get('bindsToExport') else 'no')} |"
        )
    prov = sig.get("provenance")
    if isinstance(prov, dict):
        binds = "yes" if prov.get("exportJsonSubject") else "no"
        lines.append(f"| {md(prov.get('name', 'provenance'))} | {md('subjects checked')} | | {md(binds)} |")
    return lines


def failure_summary(command: str, code: int, kind: str, message: str, hint: str) -> str:
    lines = [f"### stella-oci {command}: failed (exit {code})", "", "| | |", "|---|---|"]
    lines.append(f"| Error | {md(kind)} |")
    lines.append(f"| Message | {md(message)} |")
    if hint:
        lines.append(f"| Hint | {md(hint)} |")
    lines.append("")
    lines.append("Exit codes: docs/exit-codes.md in the stella-oci repository.")
    return "\n".join(lines) + "\n\n"


def append_summary(env: Mapping[str, str], text: str) -> None:
    path = env.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)


def text_result(i: Inputs, doc: Mapping[str, Any]) -> list[str]:
    if i.command == "copy":
        return [
            f"copied {doc.get('source', '')} -> {doc.get('destination', '')}",
            f"  digest:          {doc.get('digest', '')}",
            f"  referrers:       {len(doc.get('referrers') or [])}",
            f"  cosign tags:     {len(doc.get('cosignTags') or [])}",
        ]
    lines = [f"{_VERBS[i.command]} {doc.get('reference', '')}"]
    lines.append(f"  digest:          {doc.get('digest', '')}")
    if i.command == "push":
        lines.append(f"  tags:            {', '.join(str(t) for t in doc.get('tags') or [])}")
    lines.append(f"  export:          {doc.get('exportId', '')} ({doc.get('profile', '')})")
    lines.append(f"  export manifest-digest: {doc.get('exportManifestDigest', '')}")
    lines.append(f"  layers:          {len(doc.get('layers') or [])}")
    return lines


# --------------------------------------------------------------------------- main


class _Log:
    """Stdout with workflow commands stopped while untrusted text is printed."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def command(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def stop(self) -> str:
        token = f"stella-oci-{secrets.token_hex(16)}"
        self.command(f"::stop-commands::{token}")
        return token

    def resume(self, token: str) -> None:
        self.command(f"::{token}::")

    def untrusted(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        token = self.stop()
        for line in lines:
            self.stream.write(line + "\n")
        self.resume(token)


def _fail(
    log: _Log, env: Mapping[str, str], command: str, code: int, kind: str, message: str, hint: str = ""
) -> int:
    full = message + (f"\nhint: {hint}" if hint else "")
    log.command(error_command(full, f"stella-oci {command} failed (exit {code})"))
    append_summary(env, failure_summary(command, code, kind, message, hint))
    return code


def main(env: Mapping[str, str] | None = None, stdout: TextIO | None = None) -> int:
    env = dict(os.environ if env is None else env)
    log = _Log(stdout or sys.stdout)
    for line in mask_commands(env.get("INPUT_PASSWORD", "")):
        log.command(line)
    command = _get(env, "command").lower() or "push"
    try:
        inputs = read_inputs(env)
    except ActionInputError as exc:
        return _fail(
            log, env, command if command in COMMANDS else "action", exc.exit_code, "invalid-input", str(exc)
        )

    argv = build_argv(inputs, env.get("STELLA_OCI_PYTHON") or None)
    child_env = {k: v for k, v in env.items() if k != "INPUT_PASSWORD"}
    child_env.update({"NO_COLOR": "1", "PYTHONUTF8": "1"})
    # The CLI's progress and messages go to the log with workflow commands stopped.
    token = log.stop()
    try:
        proc = subprocess.run(
            argv,
            input=(inputs.password + "\n") if inputs.password else None,
            stdin=None if inputs.password else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=child_env,
            text=True,
            check=False,
        )
    except OSError as exc:
        log.resume(token)
        return _fail(log, env, inputs.command, EXIT_INTERNAL, "internal", f"cannot run stella-oci: {exc}")
    finally:
        sys.stderr.flush()
    log.resume(token)

    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        log.untrusted(proc.stdout.splitlines())
        code = proc.returncode or EXIT_INTERNAL
        return _fail(
            log,
            env,
            inputs.command,
            code,
            "internal",
            f"stella-oci {inputs.command} exited with {proc.returncode} without a JSON result",
        )
    error = doc.get("error")
    if proc.returncode != 0 or isinstance(error, dict):
        err = error if isinstance(error, dict) else {}
        code = proc.returncode or int(err.get("code") or EXIT_INTERNAL)
        return _fail(
            log,
            env,
            inputs.command,
            code,
            str(err.get("kind") or "internal"),
            str(err.get("message") or f"stella-oci exited with {proc.returncode}"),
            str(err.get("hint") or ""),
        )

    if inputs.format == "json":
        log.untrusted(json.dumps(doc, indent=2, sort_keys=True).splitlines())
    else:
        log.untrusted(text_result(inputs, doc))
    outputs = result_outputs(doc)
    if env.get("GITHUB_OUTPUT"):
        write_outputs(env["GITHUB_OUTPUT"], outputs)
    append_summary(env, success_summary(inputs, doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
