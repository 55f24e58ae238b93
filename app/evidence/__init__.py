"""Evidence bundles: one signed zip per scope (model release, run, dataset version, time range) that
an auditor checks offline, with ``rlhf-audit verify-bundle`` or the standalone ``verify.py`` inside.

:mod:`.builder` builds them, :mod:`.scope` selects the entries, :mod:`.dsse` signs the in-toto
attestation, :mod:`.api` serves ``POST /api/v1/bundles``. The format is in ``docs/evidence.md``.
:mod:`.verify` is the checking side (``rlhf-audit verify-bundle``, :mod:`.commands`): it imports
only the ledger's checking modules and ``cryptography``, which is why this package imports none
of its modules itself.
"""
