"""Rotating the log key without breaking a single old proof.

Old checkpoints stay as they were signed, so the old verifier key stays in the key history
(:mod:`ledger.key_history`). The rotation is an event on the log (``log.key_rotated``, naming
both keys), and the checkpoint that first includes it is the transition: signed by the old and
the new key, so that whoever pinned the old key learns the new one from a note the old key
vouches for. Later checkpoints carry the new key's signature only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LedgerError
from .home import LogHome
from .log import SignedCheckpoint
from .note import Signer

__all__ = ["Rotation", "rotate_log_key"]

ATTEMPTS = 5


@dataclass(frozen=True)
class Rotation:
    previous_vkey: str
    vkey: str
    transition: SignedCheckpoint
    retired_file: str | None


async def rotate_log_key(home: LogHome, *, keep_retired: bool = True) -> Rotation:
    """Give the home's log a new key and return the transition checkpoint.

    The new key's files replace the old ones only after the transition is published; processes
    that opened the log earlier pick them up before their next checkpoint (``LogHome.key_watch``).
    An integrator in another process that signs in between, with the old key alone, leaves a
    checkpoint the self-audit reports, which is why the guide says to stop integrators first.
    """
    log = await home.open_log()
    try:
        old = log.signer
        history = log.key_history
        new = Signer.generate(old.name)
        await log.integrate()  # what was appended before the rotation goes under the old key
        event = {"kind": "log.key_rotated", "previous_vkey": old.verifier.vkey,
                 "vkey": new.verifier.vkey}
        log.cosigners = [new]
        transition = None
        for _ in range(ATTEMPTS):  # another integrator may take our entry first: append it again
            (entry,) = await log.append([event])
            published = await log.integrate()
            if published is not None and published.size > entry.leaf_index:
                transition = published
                break
        log.cosigners = []
        if transition is None:
            raise LedgerError("another process integrated every rotation entry first, under the old "
                              "key; stop the integrators (server, workers) and rotate again")
        retired = home.retired_dir / f"log-{old.verifier.key_id.hex()}.key" if keep_retired else None
        home.install_log_key(new, history.rotated(new.verifier, transition.size),
                             old if keep_retired else None)
        log.signer, log.key_history = new, history.rotated(new.verifier, transition.size)
        await log.timestamp_pending(force=True)
    finally:
        await log.close()
    return Rotation(old.verifier.vkey, new.verifier.vkey, transition,
                    None if retired is None else str(retired))
