"""Issue 13: ``save --sign-key`` signs the archive inventory as a DSSE envelope; ``load
--trust-root`` verifies it before anything is written. Real registries: A (the session
registry) and B (started here); keys generated here."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from stella_oci.signing.trust import key_id_of
from tests.support.bundles import copy_example
from tests.test_airgap_archive import cli_json, digest_at

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
INVENTORY = "stella-oci/inventory.json"
ENVELOPE = "stella-oci/inventory.dsse.json"
CHECKSUMS = "stella-oci/checksums.sha256"


def write_key(private, directory: Path, name: str) -> tuple[Path, Path]:
    """The private key (PKCS#8 PEM) and its public half (SubjectPublicKeyInfo PEM)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / f"{name}.key"
    pub = directory / f"{name}.pub"
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pub.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, pub


def rewrite(archive: Path, out: Path, change) -> None:
    """Copy ``archive`` with its inventory changed by ``change(dict)``, and the checksums file
    updated to match (what someone forging the archive would do)."""
    with tarfile.open(archive) as tf:
        members = [(m, tf.extractfile(m).read() if m.isfile() else None) for m in tf.getmembers()]
    data = dict((m.name, d) for m, d in members)
    inventory = json.loads(data[INVENTORY])
    change(inventory)
    new_inv = (json.dumps(inventory, indent=2, sort_keys=True) + "\n").encode()
    lines = []
    for line in data[CHECKSUMS].decode().splitlines():
        hexd, _, name = line.partition("  ")
        lines.append(f"{hashlib.sha256(new_inv).hexdigest() if name == INVENTORY else hexd}  {name}\n")
    data[INVENTORY], data[CHECKSUMS] = new_inv, "".join(lines).encode()
    with tarfile.open(out, "w") as tf:
        for m, _ in members:
            if m.isfile():
                m.size = len(data[m.name])
                tf.addfile(m, io.BytesIO(data[m.name]))
            else:
                tf.addfile(m)


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256"])
def test_signed_inventory_verified_before_load(registry, inside, fresh_repo, run_cli, tmp_path, algorithm):
    private = (
        ed25519.Ed25519PrivateKey.generate()
        if algorithm == "ed25519"
        else ec.generate_private_key(ec.SECP256R1())
    )
    key, pub = write_key(private, tmp_path / "keys", "operator")
    _, other_pub = write_key(ed25519.Ed25519PrivateKey.generate(), tmp_path / "other", "stranger")
    repo = f"{fresh_repo}/trivy"
    pushed = cli_json(
        run_cli, "push", copy_example("trivy-db", tmp_path / "trivy"), f"{registry.host}/{repo}:s-1"
    )
    signed, unsigned = tmp_path / "signed.tar", tmp_path / "unsigned.tar"
    saved = cli_json(run_cli, "save", f"{registry.host}/{repo}:s-1", "--output", signed, "--sign-key", key)
    assert saved["signedBy"] == key_id_of(private.public_key())
    cli_json(run_cli, "save", f"{registry.host}/{repo}:s-1", "--output", unsigned)
    with tarfile.open(signed) as tf:
        envelope = json.loads(tf.extractfile(ENVELOPE).read())
        inventory = tf.extractfile(INVENTORY).read()
        assert ENVELOPE in tf.extractfile(CHECKSUMS).read().decode()
    assert envelope["payloadType"] == "application/vnd.stellaops.archive-inventory.v1+json"
    assert envelope["signatures"][0]["keyid"] == saved["signedBy"]
    import base64

    assert base64.b64decode(envelope["payload"]) == inventory
    ledger = tmp_path / "l.sqlite3"

    # unsigned archive with --trust-root: refused before anything is written
    refused = cli_json(
        run_cli, "load", unsigned, inside.host, "--trust-root", pub, "--ledger", ledger, expect=3
    )
    assert "not signed" in refused["error"]["message"] and str(unsigned) in refused["error"]["message"]
    assert digest_at(inside, repo, "s-1") is None

    # signed by a key outside the trust root
    refused = cli_json(
        run_cli, "load", signed, inside.host, "--trust-root", other_pub, "--ledger", ledger, expect=3
    )
    assert ENVELOPE in refused["error"]["message"] and "not in the trust root" in refused["error"]["message"]
    assert digest_at(inside, repo, "s-1") is None

    # the inventory changed after signing (checksums recomputed, so only the signature can tell)
    forged = tmp_path / "forged.tar"
    rewrite(signed, forged, lambda inv: inv.update(mirrorGeneration=inv["mirrorGeneration"] + 100))
    assert cli_json(run_cli, "load", forged, inside.host, "--dry-run", "--ledger", ledger)["exports"], (
        "without --trust-root the forged archive passes its checksums: the signature is what catches it"
    )
    refused = cli_json(
        run_cli, "load", forged, inside.host, "--trust-root", pub, "--ledger", ledger, expect=3
    )
    assert "changed after it was signed" in refused["error"]["message"]
    assert digest_at(inside, repo, "s-1") is None

    # good: verified, then loaded. One --trust-root serves both checks: the site's directory
    # holds the archive signer's key and the Export Center's key that signs the exports
    # (the trivy-db example is signed by the EXAMPLE-ONLY key), and strangers' keys do no harm
    (tmp_path / "keys" / "stranger.pub").write_bytes(other_pub.read_bytes())
    (tmp_path / "keys" / "export-center.pub").write_bytes(
        (EXAMPLES / "keys" / "EXAMPLE-ONLY-ed25519.pub").read_bytes()
    )
    loaded = cli_json(
        run_cli, "load", signed, inside.host, "--trust-root", tmp_path / "keys", "--ledger", ledger
    )
    assert loaded["inventorySignedBy"] == {str(signed): saved["signedBy"]}
    assert [e["status"] for e in loaded["exports"]] == ["loaded"]
    assert digest_at(inside, repo, "s-1") == pushed["digest"]


def test_sign_key_refuses_a_public_key_before_reading(registry, run_cli, tmp_path):
    _, pub = write_key(ed25519.Ed25519PrivateKey.generate(), tmp_path / "k", "k")
    code, out, err = run_cli(
        "save", f"{registry.host}/nothing/here:1", "--output", tmp_path / "x.tar", "--sign-key", pub
    )
    assert code == 2, (code, out, err)
    assert "not a usable PEM private key" in err and str(pub) in err
    assert not (tmp_path / "x.tar").exists()
