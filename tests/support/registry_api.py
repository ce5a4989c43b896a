"""Registry API calls that only the tests need (no stella-oci command uses them), made through
a :class:`~stella_oci.transport.RegistryClient`'s session so that they authenticate, retry and
map errors exactly as the product's own calls do."""

from __future__ import annotations

import urllib.parse

from stella_oci.transport import RegistryClient
from stella_oci.transport.auth import repository_scope


def ping(client: RegistryClient) -> None:
    """GET /v2/ (authenticating if challenged); raises the mapped StellaOciError otherwise."""
    http = client._http
    resp = http.send("GET", "/v2/", scopes=[], what=f"ping {client.host}")
    try:
        if resp.status_code != 200:
            raise http.raise_status(resp, f"GET {client.host}/v2/")
    finally:
        resp.close()


def delete_manifest(client: RegistryClient, repo: str, digest: str) -> None:
    http = client._http
    what = f"manifest {client.host}/{repo}@{digest}"
    resp = http.send(
        "DELETE", f"/v2/{repo}/manifests/{digest}", scopes=[repository_scope(repo, "delete")], what=what
    )
    try:
        if resp.status_code not in (200, 202, 204):
            raise http.raise_status(resp, what)
    finally:
        resp.close()


def list_tags(client: RegistryClient, repo: str) -> list[str]:
    """All tags of ``repo``, following ``Link: <...>; rel="next"`` pagination."""
    http = client._http
    what = f"tags of {client.host}/{repo}"
    tags: list[str] = []
    url = http.url(f"/v2/{repo}/tags/list")
    seen: set[str] = set()
    while url and url not in seen:
        seen.add(url)
        resp = http.send("GET", url, scopes=[repository_scope(repo, "pull")], what=what)
        try:
            if resp.status_code != 200:
                raise http.raise_status(resp, what)
            doc = resp.json()
            page = doc.get("tags") if isinstance(doc, dict) else None
            tags.extend(t for t in (page or []) if isinstance(t, str))
            nxt = resp.links.get("next", {}).get("url")
            url = urllib.parse.urljoin(resp.url or url, nxt) if nxt else ""
        finally:
            resp.close()
    return tags
