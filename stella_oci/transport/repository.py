"""Repository-level distribution API calls of the everyday verbs: ping, the tag list (paginated
with ``n``, ``last`` and ``Link``), the catalog (paginated by the same helper), manifest DELETE.
Made through a :class:`~stella_oci.transport.client.RegistryClient`'s session, so that they
authenticate, retry and map errors exactly as every other call."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from stella_oci.errors import AuthError, InvalidInputError, RegistryAnswer, RegistryError, StellaOciError
from stella_oci.jsonio import load_json
from stella_oci.transport.auth import repository_scope
from stella_oci.transport.client import RegistryClient

if TYPE_CHECKING:
    import requests

    from stella_oci.transport.http import RegistrySession

log = logging.getLogger("stella_oci.transport")

#: Bounds of a tag listing: pages followed, tags returned, bytes of one page.
MAX_TAG_PAGES = 10_000
MAX_TAGS = 1_000_000
MAX_TAG_PAGE_BYTES = 16 * 1024 * 1024


def ping(client: RegistryClient, what: str | None = None) -> None:
    """GET /v2/, authenticating when challenged: proves the credentials work for the host.
    ``what`` starts the messages (default ``registry HOST``)."""
    http = client._http
    what = what or f"registry {client.host}"
    resp = http.send("GET", "/v2/", scopes=[], what=what)
    try:
        if resp.status_code != 200:
            raise http.raise_status(resp, f"GET {client.host}/v2/")
    finally:
        resp.close()


def _paginate(
    http: RegistrySession,
    path: str,
    query: dict[str, str],
    *,
    member: str,
    scopes: list[str],
    what: str,
    page_size: int,
    max_pages: int,
    max_items: int,
    max_page_bytes: int,
    noun: str,
    items_hint: str,
    check: Callable[[requests.Response], None] | None = None,
) -> Iterator[str]:
    """The strings of ``member`` of every page of a distribution listing (tags, catalog):
    ``GET path?query`` (``n`` = ``page_size``), then follows ``Link: <...>; rel="next"``; a
    registry that sends no Link but exactly a full page is asked again with ``last=`` the last
    name of it; one that ignores ``n`` is read in one go; a page URL seen before ends the
    listing. Bounded: ``max_pages`` pages of at most ``max_page_bytes`` bytes, ``max_items``
    names (more is :class:`InvalidInputError` naming ``what``). ``check`` sees every response
    before its status is judged (to raise its own error for a status)."""
    url = http.url(path + "?" + urllib.parse.urlencode(query))
    seen: set[str] = set()
    count = 0
    for _ in range(max_pages):
        if not url or url in seen:
            return
        seen.add(url)
        resp = http.send("GET", url, scopes=scopes, what=what, stream=True)
        try:
            if check is not None:
                check(resp)
            if resp.status_code != 200:
                raise http.raise_status(resp, what)
            body = resp.raw.read(max_page_bytes + 1, decode_content=True)
            if len(body) > max_page_bytes:
                raise InvalidInputError(f"{what}: a {noun} page over {max_page_bytes} bytes")
            doc = load_json(body, f"{what} (page {len(seen)})", error=InvalidInputError)
            page = doc.get(member) if isinstance(doc, dict) else None
            names = [n for n in (page or []) if isinstance(n, str)]
            nxt = resp.links.get("next", {}).get("url")
            if nxt:
                url = urllib.parse.urljoin(resp.url or url, nxt)
            elif names and len(names) == page_size:  # a full page and no Link: ask for what follows
                url = http.url(path + "?" + urllib.parse.urlencode({"n": str(page_size), "last": names[-1]}))
            else:
                url = ""
        finally:
            resp.close()
        for name in names:
            count += 1
            if count > max_items:
                raise InvalidInputError(f"{what}: more than {max_items} {member}", hint=items_hint)
            yield name
    raise InvalidInputError(f"{what}: more than {max_pages} pages", hint="use a larger --page-size")


def iter_tags(
    client: RegistryClient, repo: str, *, page_size: int = 1000, last: str | None = None
) -> Iterator[str]:
    """Every tag of ``repo`` after ``last``, page by page (``?n=page_size``): follows
    ``Link: <...>; rel="next"``; a registry that sends no Link but exactly a full page is asked
    again with ``last=`` its last tag; one that ignores ``n`` (distribution 2.8 sends every tag
    at once) is read in one go. Bounded by :data:`MAX_TAG_PAGES` and :data:`MAX_TAGS`."""
    return _paginate(
        client._http,
        f"/v2/{repo}/tags/list",
        {"n": str(page_size), **({"last": last} if last else {})},
        member="tags",
        scopes=[repository_scope(repo, "pull")],
        what=f"tags of {client.host}/{repo}",
        page_size=page_size,
        max_pages=MAX_TAG_PAGES,
        max_items=MAX_TAGS,
        max_page_bytes=MAX_TAG_PAGE_BYTES,
        noun="tag list",
        items_hint="narrow with --last",
    )


#: Bounds of a catalog listing: pages followed, repositories returned, bytes of one page.
MAX_CATALOG_PAGES = 10_000
MAX_CATALOG_REPOSITORIES = 100_000
MAX_CATALOG_PAGE_BYTES = 16 * 1024 * 1024
#: What a registry without the catalog API (or with it switched off) answers.
CATALOG_DISABLED_STATUS = (404, 405)
CATALOG_REFUSED_STATUS = (401, 403)


class CatalogUnavailable(InvalidInputError):
    """The registry does not offer ``/v2/_catalog`` (404/405, or an UNSUPPORTED error): the
    repositories have to be named instead (exit 2)."""


class CatalogRefused(AuthError):
    """The registry refuses ``/v2/_catalog`` to these credentials (401/403; exit 6)."""


def iter_catalog(client: RegistryClient, *, page_size: int = 1000) -> Iterator[str]:
    """Every repository of the registry, page by page (``GET /v2/_catalog?n=page_size``,
    following ``Link: <...>; rel="next"``, or ``last=`` after a full page without one).
    Bounded by :data:`MAX_CATALOG_PAGES` and :data:`MAX_CATALOG_REPOSITORIES`. A registry
    without the catalog API raises :class:`CatalogUnavailable`, one that refuses it
    :class:`CatalogRefused`."""
    what = f"catalog of {client.host}"

    def check(resp: requests.Response) -> None:
        if resp.status_code in CATALOG_DISABLED_STATUS:
            raise CatalogUnavailable(
                f"{what}: registry {client.host} has no catalog API (GET /v2/_catalog answered "
                f"{resp.status_code}): it cannot say which repositories it holds"
            )
        if resp.status_code in CATALOG_REFUSED_STATUS:
            raise CatalogRefused(
                f"{what}: registry {client.host} refuses to list its repositories to these credentials "
                f"(GET /v2/_catalog answered {resp.status_code})"
            )

    return _paginate(
        client._http,
        "/v2/_catalog",
        {"n": str(page_size)},
        member="repositories",
        scopes=["registry:catalog:*"],
        what=what,
        page_size=page_size,
        max_pages=MAX_CATALOG_PAGES,
        max_items=MAX_CATALOG_REPOSITORIES,
        max_page_bytes=MAX_CATALOG_PAGE_BYTES,
        noun="catalog",
        items_hint="name the repositories (or a narrower DEST prefix) instead",
        check=check,
    )


def delete_manifest(client: RegistryClient, repo: str, digest: str) -> None:
    """DELETE the manifest ``digest``. A registry with deletes disabled (distribution answers
    405 UNSUPPORTED) is named as such."""
    http = client._http
    what = f"delete {client.host}/{repo}@{digest}"
    resp = http.send(
        "DELETE", f"/v2/{repo}/manifests/{digest}", scopes=[repository_scope(repo, "delete")], what=what
    )
    try:
        if resp.status_code in (200, 202, 204):
            return
        if resp.status_code == 405:
            resp.close()
            raise RegistryError(
                f"{what}: registry {client.host} has deletes disabled (HTTP 405 UNSUPPORTED); nothing was deleted",
                registry=RegistryAnswer(client.host, 405, ("UNSUPPORTED",)),
                hint="distribution: set storage.delete.enabled: true (REGISTRY_STORAGE_DELETE_ENABLED=true); "
                "Harbor/ghcr.io: delete through their UI or API, or use a retention policy",
            )
        err: StellaOciError = http.raise_status(resp, what)
        raise err
    finally:
        resp.close()
