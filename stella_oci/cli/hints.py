"""Hints that name command-line options, made from the structured errors the library raises.

The transport says *what* failed (:class:`~stella_oci.errors.TlsError` with its ``problem``,
the :class:`~stella_oci.errors.RegistryAnswer` with HTTP status and registry error codes, the
``side`` of a transfer); only the CLI knows its option names, so the fix is worded here.
Every option named here exists (``tests/test_errors.py`` checks them against ``--help``).
"""

from __future__ import annotations

from stella_oci.errors import AuthError, RegistryError, StellaOciError, TlsError, TransientError

TLS_HINTS = {
    "untrusted": "give the registry's CA certificate with --ca-file FILE, or skip verification with "
    "--insecure (only for test registries)",
    "client-certificate": "this registry requires mutual TLS: give a client certificate it trusts with "
    "--cert-file FILE --key-file FILE",
    "not-https": "this registry speaks plain HTTP: use --plain-http (and no --ca-file, --cert-file)",
    "https-only": "this registry speaks HTTPS: drop --plain-http (for a private CA, give it with --ca-file FILE)",
    "hostname": "reach the registry by a name its certificate lists, or have its certificate reissued; "
    "--insecure skips verification (test registries only)",
    "handshake": "check --ca-file, the client certificate and key (--cert-file FILE --key-file FILE) "
    "for registries that require mutual TLS, or use --insecure for test registries",
}

#: Distribution error codes (OCI distribution spec, "Error Codes") and what to do about them.
REGISTRY_CODE_HINTS = {
    "DENIED": "the registry denied the operation: check the account's permissions on the repository",
    "UNSUPPORTED": "the registry does not support this operation (some registries are read-only or "
    "disable deletes)",
    "MANIFEST_INVALID": "the registry refused the manifest: check that it accepts OCI 1.1 artifact "
    "manifests (artifactType, empty config)",
    "NAME_INVALID": "the registry refused the repository name: check its naming rules",
    "TAG_INVALID": "the registry refused the tag: check its tag rules",
    "SIZE_INVALID": "the registry counted a different size than the descriptor states",
    "TOOMANYREQUESTS": "the registry rate-limits this client: wait, or raise --retries / --retry-max-time",
}

#: Every option a hint above may name (checked against the commands' --help by the tests).
OPTIONS_NAMED = (
    "--ca-file",
    "--insecure",
    "--plain-http",
    "--cert-file",
    "--key-file",
    "--retries",
    "--retry-max-time",
    "--username",
    "--password-stdin",
    "--chunk-size",
)


def hint_for(error: StellaOciError) -> str | None:
    """The hint the CLI prints for ``error``: its own when it has one, else one made from its
    structure (TLS problem, registry status and codes), else None."""
    if error.hint:
        return error.hint
    if isinstance(error, TlsError):
        return TLS_HINTS[error.problem]
    answer = error.registry
    if answer is not None:
        for code in answer.codes:
            if code in REGISTRY_CODE_HINTS:
                return REGISTRY_CODE_HINTS[code]
        if isinstance(error, AuthError):
            return "log in with --username USER --password-stdin, docker login, or a credential helper"
        if isinstance(error, TransientError):
            return "the registry kept failing: try again later, or raise --retries / --retry-max-time"
        if isinstance(error, RegistryError) and answer.status == 413:
            return (
                "the registry (or a proxy in front of it) takes no request this large: upload in "
                "smaller parts with --chunk-size SIZE below its limit, e.g. --chunk-size 16MiB"
            )
        if isinstance(error, RegistryError) and answer.status == 405:
            return "the registry does not allow this method here (read-only registry, or deletes disabled)"
        if isinstance(error, RegistryError):
            return f"the registry at {answer.host} answered outside the OCI distribution protocol: check its logs"
    return None
