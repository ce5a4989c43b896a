"""Issue 14 ("copy (and the multi-export transfers) bring cosign tag-scheme signatures and
attestations along, --no-signatures to skip"): ``save`` carries the ``sha256-<hex>.sig`` and
``.att`` tags next to an export into its archive, and ``load`` brings them into a second real
registry with their digests unchanged; ``save --no-signatures`` and ``load --no-signatures``
leave them."""

from __future__ import annotations

from tests.support.bundles import copy_example
from tests.test_airgap_archive import cli_json
from tests.test_cosign_tags import archive_tags, cosign_tags, registry_tags


def test_save_load_carry_cosign_tags(registry, inside, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    digest = cli_json(run_cli, "push", bundle, f"{registry.host}/{fresh_repo}:v1")["digest"]
    sigs = cosign_tags(registry, fresh_repo, digest)
    assert len(sigs) == 2

    # --all-tags selects the export only: the cosign tags travel with it, not as exports
    archive = tmp_path / "weekly.tar"
    saved = cli_json(run_cli, "save", f"{registry.host}/{fresh_repo}", "--all-tags", "--output", archive)
    assert [(e["tag"], e["digest"]) for e in saved["exports"]] == [("v1", digest)]
    assert saved["exports"][0]["cosignTags"] == sigs and saved["cosignTags"] == 2
    assert {t: archive_tags(archive).get(t) for t in sigs} == sigs

    loaded = cli_json(run_cli, "load", archive, f"{inside.host}/a")
    assert [e["status"] for e in loaded["exports"]] == ["loaded"]
    assert sorted(loaded["exports"][0]["cosignTags"]) == sorted(sigs)
    got = registry_tags(inside, f"a/{fresh_repo}")
    assert got == {"v1": digest, **sigs}

    # load --no-signatures leaves what the archive carries
    loaded = cli_json(run_cli, "load", archive, f"{inside.host}/b", "--no-signatures")
    assert loaded["exports"][0]["cosignTags"] == []
    assert registry_tags(inside, f"b/{fresh_repo}") == {"v1": digest}

    # save --no-signatures: the archive has none, so load brings none
    bare = tmp_path / "bare.tar"
    saved = cli_json(run_cli, "save", f"{registry.host}/{fresh_repo}:v1", "--no-signatures", "--output", bare)
    assert saved["exports"][0]["cosignTags"] == {} and saved["cosignTags"] == 0
    assert set(archive_tags(bare)) == {"v1"}
    cli_json(run_cli, "load", bare, f"{inside.host}/c")
    assert registry_tags(inside, f"c/{fresh_repo}") == {"v1": digest}
