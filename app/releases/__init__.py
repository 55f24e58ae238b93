"""Ecosystem-native evidence for a released model, each artefact checked by its ecosystem's own tool.

For a model whose ``model.released`` is on the log, :func:`app.releases.service.attest_release`
writes under ``releases/<model>/`` in the object store:

- ``model.sig``: an OpenSSF model-signing signature (a Sigstore bundle v0.3 holding a DSSE
  envelope) whose resources are the ``run.completed`` file digests, as logged: the model is not
  hashed again (:mod:`.model_signature`); ``model_signing verify key`` checks it over the directory;
- ``provenance.dsse.json``: an in-toto Statement v1 about the model (its model-signing digest)
  with the SLSA Provenance v1 predicate, naming the job spec, the base model and dataset version,
  and the log entries of the run, its approval and its release (:mod:`.provenance`);
- ``release.receipt.cose``: a COSE receipt (RFC 9162 inclusion of the ``model.released`` entry,
  the draft-ietf-cose-merkle-tree-proofs shape), with the checkpoint and entry it proves
  (:mod:`.receipts`);
- ``release-key.pem``: the release-signing key's public half (ECDSA P-256), which the log
  records as ``keys.release_key`` (:mod:`.keys`).
"""
