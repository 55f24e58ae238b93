"""``GET /log/v1/keys`` publishes the evidence- and release-signing public keys beside the log's, the
same values ``rlhf-audit public-keys`` prints; a key the home does not have is left out, not made,
and no secret is ever in it; a rotation made by another process shows at once."""

from __future__ import annotations

import json
from pathlib import Path

from app.core.keyring import EVIDENCE_KEY, RELEASE_KEY, Keyring
from app.events.index import EventIndex
from app.events.recording import SYSTEM
from app.evidence import dsse
from app.keys.evidence_rotation import rotate_evidence_key
from app.releases import keys as release
from ledger.log import Log
from tests.support.asgi import running
from tests.support.cli_run import cli, cli_env
from tests.support.databases import database_of

SIGNING = ("evidence_key", "evidence_key_id", "release_key", "release_key_id")


async def test_keys_endpoint_publishes_the_signing_keys(log: Log, tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    async with running(log, keyring) as (_, client):
        keys = (await client.get("/log/v1/keys")).json()
        evidence = keyring.evidence_signer.public_key()  # the server made it when it started
        assert keys["evidence_key"] == dsse.public_key_pem(evidence).decode()
        assert keys["evidence_key_id"] == dsse.key_id(evidence)
        assert "release_key" not in keys and "release_key_id" not in keys  # none yet: not invented
        assert not keyring.has(RELEASE_KEY)

        signer = keyring.release_signer.public_key()  # the first release made it
        other = Keyring(keyring.directory)  # as another process would
        rotated = await rotate_evidence_key(log, EventIndex(database_of(log), log), other, SYSTEM)
        keys = (await client.get("/log/v1/keys")).json()
        assert keys["evidence_key_id"] == rotated.key_id != rotated.previous_key_id
        assert keys["release_key"] == release.public_key_pem(signer).decode()
        assert keys["release_key_id"] == release.key_id(signer)
        body = (await client.get("/log/v1/keys")).text
        for name in (EVIDENCE_KEY, RELEASE_KEY):
            seed = (keyring.directory / name).read_bytes()
            assert seed.hex() not in body and "PRIVATE" not in body


def test_keys_endpoint_matches_public_keys(tmp_path: Path) -> None:
    """The CLI prints what the endpoint serves, for the four signing-key members."""
    env = cli_env(tmp_path / "home")
    cli(env, "init", "--origin", "keys.example/log")
    printed = json.loads(cli(env, "public-keys").stdout)
    keyring = Keyring(tmp_path / "home" / "keys")
    assert all(name in printed for name in SIGNING)
    from app.keys.public import signing_keys

    assert {k: printed[k] for k in SIGNING} == signing_keys(keyring)
