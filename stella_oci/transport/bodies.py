"""Reading answers with a cap: no answer body is ever read whole into memory unbounded.

Small answers (error bodies, token responses, tag lists, the bodies of redirects and of
status-only answers) are read streaming and stop at a limit; blob bodies are streamed by
their callers. ``requests``' ``resp.content`` / ``resp.json()`` / ``resp.text`` read a body
whole and are not used on registry answers anywhere in stella_oci.
"""

from __future__ import annotations

import requests

from stella_oci.errors import InvalidInputError, StellaOciError

SMALL_BODY_LIMIT = 1024 * 1024
"""What is kept of the body of an answer nobody streams (status-only answers, errors)."""
TOKEN_BODY_LIMIT = 1024 * 1024
"""A token endpoint's JSON answer."""
TAG_LIST_LIMIT = 16 * 1024 * 1024
"""One page of a tag list (~300k tags of 50 characters)."""
_READ = 64 * 1024


def read_capped(resp: requests.Response, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body and whether there was more (then the connection is
    closed instead of being read to its end). Connection errors propagate."""
    buf = bytearray()
    more = False
    for chunk in resp.raw.stream(_READ, decode_content=True):
        if len(buf) + len(chunk) > limit:
            buf += chunk[: limit - len(buf)]
            more = True
            break
        buf += chunk
    if more:
        resp.close()
    return bytes(buf), more


def read_body(
    resp: requests.Response,
    limit: int,
    what: str,
    error: type[StellaOciError] = InvalidInputError,
) -> bytes:
    """The whole body, or ``error`` when it is larger than ``limit`` bytes."""
    data, more = read_capped(resp, limit)
    if more:
        raise error(f"{what}: the answer is larger than the {limit // 1024} KiB this client reads")
    return data


def keep_small_body(resp: requests.Response, limit: int = SMALL_BODY_LIMIT) -> None:
    """Read a streamed answer's body (at most ``limit`` bytes) into ``resp.content`` and
    release the connection: after this, ``resp.content`` is bounded."""
    data, _more = read_capped(resp, limit)
    resp._content = data
    setattr(resp, "_content_consumed", True)  # noqa: B010 (requests' own flag: content is read)
    resp.close()


def small_body(resp: requests.Response, limit: int = SMALL_BODY_LIMIT) -> bytes:
    """The body of an answer, at most ``limit`` bytes: what ``RegistrySession.exchange``
    kept of an answer nobody streams, or read now (capped) from a streamed one."""
    if not getattr(resp, "_content_consumed", False):
        keep_small_body(resp, limit)
    return (resp._content or b"")[:limit]
