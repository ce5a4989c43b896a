"""Check the TLS files a user names (``--ca-file``, ``--cert-file``, ``--key-file``) before
any connection: a missing file was an ``OSError`` from deep inside requests (exit 1, "internal
error"), and a file that is not PEM surfaced only as a vague handshake failure with the registry.
Here each is loaded the way the TLS layer will load it, and a failure names the option, the
file and the fix (exit 2: the input is wrong, not the registry).
"""

from __future__ import annotations

from pathlib import Path

from stella_oci.errors import InvalidInputError

_PEM_HINT = (
    "PEM is text starting with '-----BEGIN CERTIFICATE-----'; convert a DER file with "
    "'openssl x509 -inform der -in FILE -out FILE.pem'"
)


def _existing(option: str, path: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InvalidInputError(f"{option} {path}: no such file", hint=f"give an existing PEM file with {option}")
    if not p.is_file():
        raise InvalidInputError(f"{option} {path}: not a file", hint=f"give a PEM file with {option}")
    return p


def check_tls_files(ca_file: str | None, client_cert: str | None, client_key: str | None) -> None:
    """Raise :class:`InvalidInputError` (exit 2) unless every given file exists and loads:
    ``ca_file`` as PEM CA certificates, ``client_cert`` (+ ``client_key``) as a PEM certificate
    and its unencrypted private key."""
    if not (ca_file or client_cert or client_key):
        return
    import ssl  # only when TLS files are given: not on the start-up path of every command

    if client_key and not client_cert:
        raise InvalidInputError(
            f"--key-file {client_key} without --cert-file",
            hint="give the client certificate with --cert-file FILE (the key may also sit in that file)",
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file:
        path = _existing("--ca-file", ca_file)
        try:
            context.load_verify_locations(cafile=str(path))
        except (ssl.SSLError, ValueError) as exc:
            raise InvalidInputError(
                f"--ca-file {ca_file}: no PEM CA certificate could be read from it ({exc})",
                hint=f"give the registry's CA certificate(s) in PEM form; {_PEM_HINT}",
            ) from None
    if client_cert:
        cert = _existing("--cert-file", client_cert)
        key = _existing("--key-file", client_key) if client_key else None
        try:
            context.load_cert_chain(str(cert), str(key) if key else None, password=lambda: b"")
        except (ssl.SSLError, ValueError) as exc:
            files = f"--cert-file {client_cert}" + (f" --key-file {client_key}" if client_key else "")
            raise InvalidInputError(
                f"{files}: not a PEM client certificate with its matching, unencrypted private key ({exc})",
                hint="give the certificate with --cert-file and its key with --key-file (both PEM; an "
                "encrypted key must be decrypted first: 'openssl pkey -in KEY -out KEY.plain')",
            ) from None
