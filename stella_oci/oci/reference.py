"""References: ``REGISTRY/REPO[:TAG][@DIGEST]``, ``oci:PATH[:TAG]``, ``oci-archive:FILE[:TAG]``.

Registry references are read the way Docker and ORAS read them: the first path component
is a registry host when it contains a ``.`` or a ``:`` or is ``localhost``; otherwise the
registry is ``docker.io`` and a single-component repository gets ``library/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from stella_oci.errors import InvalidInputError
from stella_oci.oci.digest import is_digest

# Every pattern here is used with fullmatch: with match() and "$", "v2\n" would pass as a tag.
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_HOST_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
)

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"


def check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not TAG_RE.fullmatch(tag):
        raise InvalidInputError(
            f"invalid tag {tag!r}: a tag is 1-128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'"
        )
    return tag


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``transport`` is ``registry``, ``oci`` or ``oci-archive``.

    For ``registry``: ``registry`` and ``repository`` are set. For ``oci`` / ``oci-archive``:
    ``path`` is the layout directory or archive file. ``tag`` and ``digest`` are optional.
    """

    transport: str
    registry: str = ""
    repository: str = ""
    path: str = ""
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """The host the distribution API is reached at (docker.io is served elsewhere)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def selector(self) -> str | None:
        """What to resolve: the digest when given (it wins over the tag), else the tag."""
        return self.digest or self.tag

    def with_tag(self, tag: str | None) -> Reference:
        return replace(self, tag=check_tag(tag) if tag else None)

    def with_digest(self, digest: str | None) -> Reference:
        return replace(self, digest=digest)

    def base(self) -> str:
        """The reference without tag or digest."""
        if self.transport == "registry":
            return f"{self.registry}/{self.repository}"
        return f"{self.transport}:{self.path}"

    def __str__(self) -> str:
        out = self.base()
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += "@" + self.digest
        return out


_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DIGEST_AFTER_AT_RE = re.compile(r"(?:sha256|sha384|sha512):[A-Za-z0-9=_-]*")  # fullmatch


def _userinfo_span(text: str) -> tuple[int, int] | None:
    """Where ``user[:password]@`` sits in ``text`` (after an optional ``scheme://``), or None.

    ``repo:tag@sha256:...`` is a tag and a digest, not credentials: what follows the last
    ``@`` is a digest there. Any other ``@`` in a registry reference can only be the end of
    credentials, and the last one is taken, so that a password holding ``@``, ``/`` or ``:``
    is masked whole. ``oci:`` and ``oci-archive:`` paths may hold ``@`` (a CI workspace
    ``ws@2``): they carry no credentials."""
    if text.startswith(("oci:", "oci-archive:")):
        return None
    start = 0
    m = _SCHEME_RE.match(text)
    if m:
        start = m.end()
    end = len(text)
    last = text.rfind("@", start)
    if last >= 0 and _DIGEST_AFTER_AT_RE.fullmatch(text[last + 1 :]):
        end = last  # a trailing @digest
    at = text.rfind("@", start, end)
    if at < 0:
        return None
    return start, at + 1


def mask_credentials(text: str) -> str:
    """``text`` with a ``user:password@`` part replaced by ``***@`` (for messages)."""
    span = _userinfo_span(text)
    if span is None:
        return text
    return text[: span[0]] + "***@" + text[span[1] :]


def refuse_credentials(text: str, where: str = "reference") -> None:
    """Refuse (exit 2) a reference, mirror or host that carries ``user:password@``; the
    password is registered as a secret so that no later message shows it either."""
    span = _userinfo_span(text)
    if span is None:
        return
    from stella_oci.transport.redact import register_secret

    userinfo = text[span[0] : span[1] - 1]
    register_secret(userinfo.partition(":")[2])
    register_secret(userinfo)
    raise InvalidInputError(
        f"invalid {where} {mask_credentials(text)!r}: it carries credentials (USER:PASSWORD@), "
        "which stella-oci refuses in references (they would end up in logs and shell history)",
        hint="give the user with --username and the password with --password-stdin "
        "(or STELLA_OCI_USERNAME/STELLA_OCI_PASSWORD, or a Docker config)",
    )


def parse_reference(text: str) -> Reference:
    """Parse any reference stella-oci accepts, or raise :class:`InvalidInputError` (exit 2)."""
    refuse_credentials(text)
    if not text or text != text.strip():
        raise InvalidInputError(f"invalid reference {text!r}: empty or surrounded by white space")
    for prefix in ("oci-archive:", "oci:"):
        if text.startswith(prefix):
            return _parse_layout(prefix[:-1], text[len(prefix) :], text)
    return _parse_registry(text)


def _parse_layout(transport: str, rest: str, original: str) -> Reference:
    if not rest:
        raise InvalidInputError(
            f"invalid reference {original!r}: {transport}: needs a path, e.g. {transport}:./out"
        )
    digest = None
    # '@' starts a digest only when a digest algorithm follows; otherwise it is part of the
    # path (a CI workspace such as 'ws@2')
    head, at, tail = rest.rpartition("@")
    if at and _DIGEST_AFTER_AT_RE.match(tail):
        rest, digest = head, tail
        if not is_digest(digest):
            raise InvalidInputError(f"invalid reference {original!r}: {digest!r} is not a sha256 digest")
    path, tag = rest, None
    # The tag is what follows the last ':' provided it is not part of the path (no '/').
    if ":" in rest:
        head, tail = rest.rsplit(":", 1)
        if "/" not in tail and head:
            path, tag = head, check_tag(tail) if tail else None
    return Reference(transport=transport, path=path, tag=tag, digest=digest)


def _parse_registry(text: str) -> Reference:
    rest = text
    digest = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not is_digest(digest):
            raise InvalidInputError(
                f"invalid reference {text!r}: {digest!r} is not a digest of the form sha256:<64 lowercase hex>"
            )
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not TAG_RE.fullmatch(tag):
            raise InvalidInputError(
                f"invalid reference {text!r}: tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}"
            )
    parts = rest.split("/")
    if len(parts) > 1 and (
        "." in parts[0] or ":" in parts[0] or parts[0] == "localhost" or parts[0].startswith("[")
    ):
        registry, repo_parts = parts[0], parts[1:]
        if not _HOST_RE.fullmatch(registry):
            raise InvalidInputError(f"invalid reference {text!r}: {registry!r} is not a registry host[:port]")
    else:
        registry, repo_parts = DOCKER_HUB, parts
        if len(repo_parts) == 1:
            repo_parts = ["library", *repo_parts]
    if registry == "index.docker.io":
        registry = DOCKER_HUB
    for comp in repo_parts:
        if not _COMPONENT_RE.fullmatch(comp):
            raise InvalidInputError(
                f"invalid reference {text!r}: repository component {comp!r} must be lowercase "
                "letters and digits, separated by '.', '_', '__' or '-'"
            )
    repository = "/".join(repo_parts)
    if len(repository) > 255:
        raise InvalidInputError(f"invalid reference {text!r}: repository name longer than 255 characters")
    return Reference(transport="registry", registry=registry, repository=repository, tag=tag, digest=digest)
