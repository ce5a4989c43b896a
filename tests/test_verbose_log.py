"""``--verbose`` logs every HTTP exchange, but no query value of any URL: an upload
``Location`` (``?_state=...`` on the distribution registry) is a bearer secret on some
registries (whoever holds it may write to the upload), as are pre-signed redirects."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bundles import make_bundle
from tests.support.fault_proxy import FaultProxy
from tests.support.registry import RunningRegistry


@pytest.fixture
def proxy(registry: RunningRegistry) -> Iterator[FaultProxy]:
    p = FaultProxy(registry.host)
    yield p
    p.stop()


def test_verbose_push_logs_no_query_value_of_an_upload_location(
    proxy: FaultProxy, run_cli, fresh_repo: str, tmp_path: Path
) -> None:
    # one blob in one PUT, one in 64 KiB PATCHes (a new Location after every part)
    bundle = make_bundle(
        tmp_path / "b", {"data/small.json": b'{"a": 1}\n', "data/big.bin": 200 * 1024}, export_id="exp-verbose-0001"
    )
    code, out, err = run_cli(
        "push", bundle, f"{proxy.host}/{fresh_repo}:v1", "--verbose", "--chunk-size", "64KiB"
    )
    assert code == 0, err
    assert "/blobs/uploads/" in err  # the exchanges are logged ...
    # ... every query the registry put into a Location (the upload URLs the proxy saw)
    values: set[str] = set()
    for seen in proxy.requests:
        if "/blobs/uploads/" not in seen.path or "?" not in seen.path:
            continue
        raw_query = seen.path.split("?", 1)[1]
        for pair in raw_query.split("&"):
            name, _, raw = pair.partition("=")
            if name == "digest":
                continue  # (stella-oci's own: the blob digest, printed elsewhere too)
            values.update(v for v in (raw, urllib.parse.unquote_plus(raw)) if len(v) >= 8)
    assert any(r.method == "PATCH" for r in proxy.requests) and len(values) >= 4, proxy.requests
    leaked = sorted(v for v in values if v in err)
    assert not leaked, f"query values of upload locations logged: {leaked[:2]}"
    assert "_state=***" in err
