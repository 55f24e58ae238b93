"""What ``run.started`` says about where a run came from, enough for a third party to redo it:
the code's full commit and repository (credentials never on the log), the base model's upstream
id and revision (only when known), and the accountant's own parameters, from which Opacus
recomputes the logged ε."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import ROOT

SECRET_REMOTE = "https://alice:s3cret-token@git.example.com/team/rlhf.git"


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A team's own training script in a checkout whose remote URL carries a password."""
    repo = tmp_path / "team"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("print('training')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "script")
    _git(repo, "remote", "add", "origin", SECRET_REMOTE)
    return repo


def _started(**kwargs) -> dict:
    from trainers.callback import AuditCallback
    from trainers.sinks import MemorySink

    sink = MemorySink()
    AuditCallback(sink, run="run_prov", **kwargs).record_started()
    [started] = sink.events
    assert started["kind"] == "run.started"
    return started


# -- the code ---------------------------------------------------------------------------------

def test_code_identity_of_a_checkout_has_the_full_commit_and_no_credentials(checkout: Path) -> None:
    from trainers.callback import code_identity

    code = code_identity(checkout / "train.py")
    assert code["commit"] == _git(checkout, "rev-parse", "HEAD") and len(code["commit"]) == 40
    assert code["dirty"] is False
    assert code["repository"] == "https://git.example.com/team/rlhf.git"
    assert code["describe"] == code["commit"][:7]
    assert "package_version" not in code  # a team's checkout: the package's version says nothing of it

    (checkout / "train.py").write_text("print('changed')\n")
    changed = code_identity(checkout)
    assert changed["dirty"] is True and changed["describe"].endswith("-dirty")


@pytest.mark.parametrize(("remote", "logged"), [
    ("https://alice:pw@git.example.com/team/rlhf.git", "https://git.example.com/team/rlhf.git"),
    ("https://ghp_tokenonly@github.com/org/repo.git?x=1#y", "https://github.com/org/repo.git"),
    ("ssh://git:pw@host.example:2222/org/repo.git", "ssh://host.example:2222/org/repo.git"),
    ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),  # scp-like: a user, no password
    ("bob:pw@host.example:org/repo.git", "host.example:org/repo.git"),
    ("/srv/git/repo.git", "/srv/git/repo.git"),
])
def test_repository_urls_lose_their_credentials(remote: str, logged: str) -> None:
    from trainers.callback import public_url

    assert public_url(remote) == logged


def test_run_started_records_the_code_explicitly_or_from_a_script_path(checkout: Path) -> None:
    started = _started(code=checkout / "train.py")
    assert started["code"]["commit"] == _git(checkout, "rev-parse", "HEAD")
    assert started["code"]["repository"] == "https://git.example.com/team/rlhf.git"
    assert "s3cret" not in json.dumps(started)
    assert started["code_version"] == "git:" + started["code"]["describe"]  # kept for older readers

    stated = {"commit": "a" * 40, "repository": "https://pw:x@git.example.com/r.git", "dirty": False}
    given = _started(code=stated)
    assert given["code"] == {"commit": "a" * 40, "repository": "https://git.example.com/r.git",
                             "dirty": False}
    assert given["code_version"] == "git:" + "a" * 40


def test_run_started_records_this_packages_code_by_default() -> None:
    from trainers.callback import code_identity

    code = _started()["code"]
    assert code == code_identity()
    if (ROOT / ".git").exists():
        assert code["commit"] == _git(ROOT, "rev-parse", "HEAD")
    else:
        assert "commit" not in code and "package_version" in code


# -- the base model ---------------------------------------------------------------------------

def _model_dir(path: Path, config: dict) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    (path / "model.safetensors").write_bytes(b"weights")
    return path


def test_base_model_upstream_from_the_hub_cache_layout(tmp_path: Path) -> None:
    from trainers.hashing import hash_directory

    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = _model_dir(tmp_path / "hub" / "models--org--tiny-llm" / "snapshots" / revision,
                          {"model_type": "llama"})
    base = _started(base_model=snapshot)["base_model"]
    files, root = hash_directory(snapshot)
    assert base == {"root": root, "files": files,
                    "upstream": {"id": "org/tiny-llm", "revision": revision, "source": "hub_cache"}}


def test_base_model_upstream_from_config_name_and_never_from_a_local_path(tmp_path: Path) -> None:
    named = _model_dir(tmp_path / "a", {"_name_or_path": "EleutherAI/pythia-14m"})
    assert _started(base_model=named)["base_model"]["upstream"] == {"id": "EleutherAI/pythia-14m",
                                                                    "source": "config"}
    for local in ("/home/me/models/x", "./out/final", "C:\\models\\x", "~/m", "", "bad id with spaces"):
        path = _model_dir(tmp_path / f"l{abs(hash(local))}", {"_name_or_path": local})
        assert "upstream" not in _started(base_model=path)["base_model"], local
    bare = _model_dir(tmp_path / "snapshots" / "not-a-sha", {})
    assert "upstream" not in _started(base_model=bare)["base_model"]


def test_base_model_upstream_stated_in_the_spec_wins(tmp_path: Path) -> None:
    from trainers.spec import JobSpecError, TrainingSpec

    model = _model_dir(tmp_path / "models--org--cached" / "snapshots" / ("b" * 40), {})
    spec = {"kind": "dpo", "base_model": str(model), "dataset": "ds", "learning_rate": 1e-4,
            "base_model_id": "org/original", "base_model_revision": "v1.2"}
    parsed = TrainingSpec.from_dict(spec)
    assert parsed.to_dict()["base_model_revision"] == "v1.2"
    assert _started(spec=parsed)["base_model"]["upstream"] == {"id": "org/original", "revision": "v1.2",
                                                               "source": "stated"}
    given = _started(base_model=model, base_model_upstream={"id": "org/x"})
    assert given["base_model"]["upstream"] == {"id": "org/x", "source": "stated"}
    for bad, word in [({"base_model_revision": "v1"}, "base_model_id"),
                      ({"base_model_id": "has space"}, "base_model_id"),
                      ({"base_model_id": "org/x", "base_model_revision": ""}, "base_model_revision"),
                      ({"base_model_id": 5}, "base_model_id")]:
        with pytest.raises(JobSpecError, match=word):
            TrainingSpec.from_dict({**{k: v for k, v in spec.items() if not k.startswith("base_model_")},
                                    **bad})


# -- the accountant ---------------------------------------------------------------------------

@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_epsilon_recomputed_by_opacus_from_the_logged_fields(accountant, tiny_model, pairs, tmp_path):  # noqa: F811
    pytest.importorskip("opacus")
    from opacus.accountants import create_accountant

    from trainers.callback import AuditCallback
    from trainers.sinks import MemorySink
    from trainers.spec import TrainingSpec
    from trainers.training import train

    spec = TrainingSpec.from_dict({"kind": "reward_model", "base_model": str(tiny_model), "dataset": "ds",
                                   "learning_rate": 1e-3, "batch_size": 8, "max_steps": 3,
                                   "dp": {"noise_multiplier": 1.1, "delta": 1e-5, "accountant": accountant}})
    sink = MemorySink()
    train(spec, pairs, tmp_path / "out", audit=AuditCallback(sink, run="run_eps"))
    events = sink.events
    dp = next(e for e in events if e["kind"] == "run.started")["dp"]
    privacy = [e for e in events if e["kind"] == "run.privacy"]
    completed = next(e for e in events if e["kind"] == "run.completed")
    assert dp["accountant"] == accountant and dp["accountant_parameters"]
    for logged in privacy:  # a third party: Opacus, the logged fields, nothing else
        acc = create_accountant(dp["accountant"])
        acc.history = [(dp["noise_multiplier"], dp["sample_rate"], logged["step"])]
        assert acc.get_epsilon(dp["delta"], **dp["accountant_parameters"]) == logged["epsilon"]
    assert completed["epsilon"] == privacy[-1]["epsilon"] and privacy[-1]["step"] == 3
