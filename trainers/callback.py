"""The audit callback: one line puts any TRL / transformers training run on the log.

    trainer.add_callback(AuditCallback.from_env(run="run_..."))   # RLHF_AUDIT_URL + _TOKEN
    with trainer_audit.guard():                                    # optional: records run.failed
        trainer.train()

It records (``docs/events.md``): ``run.started`` (spec, config hash, library versions, the
code's full commit and repository, base-model hashes and upstream id, dataset version root, DP
terms with the accountant's parameters and the notice that metrics are not covered by DP;
the segment's number and, for a resumed one, the checkpoint it resumes from, the base model
staying the run's original one), ``run.metrics`` in batches (so a step
costs a list append, not a log write), ``run.privacy`` for each logged ε, ``run.checkpoint``
with every file's SHA-256 and a Merkle root at each save, and the run's end:
``run.completed``, ``run.halted`` or ``run.failed``; steps are the run's global steps. The
project's DP loop drives the very same hooks, so both paths audit alike.

Each record is put in the log's event envelope by an injected :class:`Envelope`: the app's job
runtime passes the one ``app.events.recording`` builds, a team's own script gets
:func:`worker_envelope` (the same envelope, for the ``worker`` actor); this package imports
nothing from ``app``.

Under DP, ``grad_norm`` (the norm of the raw, non-private gradient) never reaches the log.
Events go to a sink (:mod:`trainers.sinks`) that delivers them off the training thread; when
delivery fails, the next hook raises, so the run stops instead of going on unaudited; the
run's start is the one delivery a hook waits for, so a bad URL or token fails before step 1.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from transformers import TrainerCallback

from ledger.canonical import encode_event

from .hashing import hash_directory
from .sinks import AuditSink, HttpSink

__all__ = ["DP_NOTICE", "AuditCallback", "Envelope", "code_identity", "code_version", "library_versions",
           "model_upstream", "public_url", "worker_envelope"]

DP_NOTICE = ("Differential privacy (unit: one preference pair) covers the trained model's parameters only. "
             "Metrics recorded during training (loss, accuracy, rewards, margins) are computed on the "
             "private data and are not covered by the DP guarantee.")
LIBRARIES = ("torch", "transformers", "trl", "opacus", "datasets", "accelerate", "tokenizers",
             "rlhf-audit-trail")
_LEAKY = ("grad_norm",)  # non-private under DP: the raw gradient's norm
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")  # org/name or name
_COMMIT = re.compile(r"[0-9a-f]{40}")

CheckpointHook = Callable[[Path, dict[str, str], str], "str | None"]


class Envelope(Protocol):
    """Puts one of the run's records in the log's event envelope: the event to deliver."""

    def __call__(self, kind: str, fields: Mapping[str, Any], /) -> dict[str, Any]: ...


def worker_envelope(kind: str, fields: Mapping[str, Any], /) -> dict[str, Any]:
    """The envelope ``app.events.recording.event`` builds, for the ``worker`` actor (role
    ``service``): a script outside the app records runs exactly as the app's worker does (a test
    pins the two alike). ``None`` values are left out."""
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = {k: v for k, v in fields.items() if v is not None}
    return {"kind": kind, "v": 1, "at": at, "actor": "worker", "role": "service", **body}


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    out = [("python", sys.version.split()[0])]
    for name in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out.append((name, metadata.version(name)))
    return tuple(out)


def library_versions() -> dict[str, str]:
    """Versions of the libraries a run depends on (those installed), and Python's."""
    return dict(_versions())


def public_url(url: str) -> str:
    """A repository URL as it may go on the log: no user or password (``https://user:token@``
    is how a token often sits in a clone's remote), query or fragment; an scp-like remote keeps
    a bare user name (``git@host:org/repo``: no secret there), never a ``user:password``."""
    if "://" in url:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    user, at, rest = url.partition("@")
    if at and ":" in rest and "/" not in user:  # scp-like user@host:path
        return rest if ":" in user else url
    return url


def _git(where: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=5,
                              check=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _checkout(where: Path) -> dict[str, Any]:
    """The commit a directory is checked out at: full SHA, dirty or not, the public origin URL."""
    commit = _git(where, "rev-parse", "--verify", "HEAD")
    if not commit:
        return {}
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    remote = _git(where, "remote", "get-url", "origin")
    code: dict[str, Any] = {"commit": commit, "dirty": bool(status) if status is not None else None,
                            "repository": public_url(remote) if remote else None,
                            "describe": _git(where, "describe", "--always", "--dirty", "--tags")}
    return {k: v for k, v in code.items() if v is not None}


@functools.cache
def _own_code() -> tuple[tuple[str, Any], ...]:
    code = _checkout(Path(__file__).resolve().parent)
    if not code:  # installed, not a checkout: the package's version is what identifies it
        with contextlib.suppress(metadata.PackageNotFoundError):
            code["package_version"] = metadata.version("rlhf-audit-trail")
    return tuple(code.items())


def code_identity(where: str | Path | None = None) -> dict[str, Any]:
    """What code a run ran: ``commit`` (full SHA), ``dirty`` (tracked files changed since),
    ``repository`` (``origin``, credentials stripped) and ``describe``, of the checkout holding
    ``where`` (a team's script or its directory); by default this package's own, once per
    process, with ``package_version`` when it is installed rather than checked out."""
    if where is None:
        return dict(_own_code())
    path = Path(where).expanduser().resolve()
    return _checkout(path if path.is_dir() else path.parent)


def _code_version(code: Mapping[str, Any]) -> str:
    """The older one-string form (``run.started.code_version``)."""
    if code.get("describe") or code.get("commit"):
        return "git:" + str(code.get("describe") or code["commit"])
    if code.get("package_version"):
        return f"rlhf-audit-trail {code['package_version']}"
    return "unknown"


def code_version() -> str:
    """``git describe`` of the checkout this code runs from, else the package version (once per process)."""
    return _code_version(code_identity())


def _hub_cache(path: Path) -> dict[str, str] | None:
    """``.../models--org--name/snapshots/<commit>``: the Hugging Face cache's own record of a download."""
    for p in dict.fromkeys((path.absolute(), path.resolve())):
        repo, snapshots = p.parent.parent.name, p.parent.name
        if snapshots == "snapshots" and repo.startswith("models--") and _COMMIT.fullmatch(p.name):
            model_id = repo.removeprefix("models--").replace("--", "/")
            if _HUB_ID.fullmatch(model_id):
                return {"id": model_id, "revision": p.name, "source": "hub_cache"}
    return None


def _config_name(path: Path) -> dict[str, str] | None:
    """``_name_or_path`` in ``config.json`` when it is a hub id, not a path on someone's machine."""
    try:
        name = json.loads((path / "config.json").read_text()).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(name, str) or not _HUB_ID.fullmatch(name):
        return None
    if Path(name).exists() or (path.parent / name).exists():  # a relative path after all
        return None
    return {"id": name, "source": "config"}


def model_upstream(path: str | Path) -> dict[str, str] | None:
    """Where a local model directory came from, when its layout or config says so (``id``,
    ``revision`` when known, and the ``source`` it was read from); ``None`` rather than a guess."""
    return _hub_cache(Path(path)) or _config_name(Path(path))


def _clean(logs: Mapping[str, Any], dp: bool) -> dict[str, Any]:
    """JSON-safe metrics: numbers and short strings; NaN/inf dropped; grad_norm dropped under DP."""
    out: dict[str, Any] = {}
    for key, value in logs.items():
        if dp and any(leak in key for leak in _LEAKY):
            continue
        if hasattr(value, "item"):
            value = value.item()
        keep = (isinstance(value, bool) or isinstance(value, int) and abs(value) < 2**53
                or isinstance(value, float) and math.isfinite(value)
                or isinstance(value, str) and len(value) <= 200)
        if keep:
            out[key] = value
    return out


class AuditCallback(TrainerCallback):
    """Records a training run on the log through ``sink``. See the module docstring."""

    def __init__(
        self, sink: AuditSink, *, run: str, spec: Any = None, dataset: str | None = None,
        dataset_version: int | None = None, dataset_root: str | None = None,
        base_model: str | Path | None = None, dp: Mapping[str, Any] | None = None,
        envelope: Envelope = worker_envelope, metrics_every: int = 50, metrics_seconds: float = 5.0,
        checkpoint_hook: CheckpointHook | None = None, auto_complete: bool = True, segment: int = 1,
        resumed_from: Mapping[str, Any] | None = None, code: Mapping[str, Any] | str | Path | None = None,
        base_model_upstream: Mapping[str, str] | None = None,
    ) -> None:
        self.sink = sink
        self.run = run
        self.spec = spec
        self.dataset = dataset
        self.dataset_version = dataset_version
        self.dataset_root = dataset_root
        self.base_model = base_model
        self.base_model_upstream = dict(base_model_upstream) if base_model_upstream else None
        self.code = code
        self.dp: dict[str, Any] | None = dict(dp) if dp else None
        self.envelope = envelope
        self.metrics_every = metrics_every
        self.metrics_seconds = metrics_seconds
        self.checkpoint_hook = checkpoint_hook
        self.auto_complete = auto_complete
        self.segment = segment
        self.resumed_from: dict[str, Any] | None = dict(resumed_from) if resumed_from else None
        self.step = 0  # the run's global step: a resumed segment goes on counting
        self.epsilon: float | None = None
        self.started = False
        self.ended: str | None = None
        self.last_checkpoint: tuple[Path, dict[str, str], str] | None = None
        self._metrics: list[dict[str, Any]] = []
        self._last_emit = time.monotonic()

    @classmethod
    def from_env(cls, *, run: str, **kwargs: Any) -> AuditCallback:
        """A callback posting to the server named by ``RLHF_AUDIT_URL`` with ``RLHF_AUDIT_TOKEN``."""
        url, token = os.environ.get("RLHF_AUDIT_URL"), os.environ.get("RLHF_AUDIT_TOKEN")
        if not url or not token:
            raise ValueError("set RLHF_AUDIT_URL (the server, e.g. https://audit.example) and "
                             "RLHF_AUDIT_TOKEN (an API token with the events:write scope)")
        return cls(HttpSink(url, token), run=run, **kwargs)

    @property
    def dp_enabled(self) -> bool:
        return bool(self.dp and self.dp.get("enabled", True))

    def _emit(self, kind: str, **fields: Any) -> None:
        self.sink.emit([self.envelope(kind, {"run": self.run, **fields})])

    def _flush_metrics(self) -> None:
        self._last_emit = time.monotonic()
        if self._metrics:
            steps, self._metrics = self._metrics, []
            self._emit("run.metrics", steps=steps)

    # -- the run's start ----------------------------------------------------------------------

    def _config(self, args: Any) -> dict[str, Any]:
        if self.spec is None:
            return {"training_args": _clean(args.to_sanitized_dict(), False)} if args is not None else {}
        return self.spec.to_dict() if hasattr(self.spec, "to_dict") else dict(self.spec)

    def _base_model_path(self, model: Any) -> Path | None:
        if self.base_model is not None:
            return Path(self.base_model)
        name = getattr(self.spec, "base_model", None) or getattr(getattr(model, "config", None),
                                                                 "_name_or_path", None)
        return Path(name) if name and Path(name).exists() else None

    def _code(self) -> dict[str, Any]:
        if self.code is None or isinstance(self.code, str | Path):
            return code_identity(self.code)
        code = {k: v for k, v in self.code.items() if v is not None}
        if isinstance(code.get("repository"), str):
            code["repository"] = public_url(code["repository"])
        return code

    def _upstream(self, base: Path | None) -> dict[str, str] | None:
        """Stated (the constructor's, else the spec's ``base_model_id``/``_revision``), else read."""
        given: Mapping[str, Any] = self.base_model_upstream or {
            "id": getattr(self.spec, "base_model_id", None),
            "revision": getattr(self.spec, "base_model_revision", None)}
        stated = {k: v for k, v in given.items() if v is not None}
        if stated:
            return {**stated, "source": "stated"}
        return model_upstream(base) if base is not None else None

    def record_started(self, args: Any = None, model: Any = None) -> None:
        """Record ``run.started`` (once) and wait until it is delivered; called from ``on_train_begin``."""
        self.sink.check()
        if self.started:
            return
        self.started = True
        config = self._config(args)
        base = self._base_model_path(model)
        base_model: dict[str, Any] | None = None
        if base is not None:
            files, root = hash_directory(base)
            base_model = {"root": root, "files": files}
        upstream = self._upstream(base)
        if upstream:
            base_model = {**(base_model or {}), "upstream": upstream}
        code = self._code()
        dp = {"enabled": False} if not self.dp_enabled else {
            "enabled": True, "unit": "preference_pair", **{k: v for k, v in (self.dp or {}).items()
                                                           if k != "enabled" and v is not None}}
        self._emit(
            "run.started", spec=config if self.spec is not None else None,
            config_sha256="sha256:" + hashlib.sha256(encode_event(config)).hexdigest(),
            libraries=library_versions(), code=code or None, code_version=_code_version(code),
            base_model=base_model,
            dataset=self.dataset or getattr(self.spec, "dataset", None),
            dataset_version=self.dataset_version or getattr(self.spec, "dataset_version", None),
            dataset_root=self.dataset_root, dp=dp, notice=DP_NOTICE if self.dp_enabled else None,
            segment=self.segment, resumed_from=self.resumed_from)
        # Wait for this one delivery: a wrong URL, a refused token or a down log stops the run
        # before its first step, not some steps later when the writer thread gets an answer.
        self.sink.flush()

    # -- TrainerCallback hooks --------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.record_started(args, kwargs.get("model"))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.sink.check()
        self.step = state.global_step
        if self._metrics and time.monotonic() - self._last_emit >= self.metrics_seconds:
            self._flush_metrics()

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None,
               **kwargs: Any) -> None:
        self.sink.check()
        logs = dict(logs or {})
        epsilon = logs.pop("epsilon", None)
        entry = {"step": state.global_step, **({"epoch": state.epoch} if state.epoch is not None else {}),
                 **_clean(logs, self.dp_enabled)}
        self._metrics.append(entry)
        if epsilon is not None:
            self.epsilon = float(epsilon)
            dp = self.dp or {}
            self._emit("run.privacy", step=state.global_step, epsilon=self.epsilon,
                       delta=dp.get("delta"), accountant=dp.get("accountant"))
        if (len(self._metrics) >= self.metrics_every
              or time.monotonic() - self._last_emit >= self.metrics_seconds):
            self._flush_metrics()

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.record_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}", state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step = state.global_step
        self._flush_metrics()
        if self.auto_complete and self.ended is None:
            files, root = self.last_checkpoint[1:] if self.last_checkpoint else (None, None)
            self.record_completed(steps=state.global_step, files=files, root=root)
        self.sink.flush()

    # -- explicit records (the project's train() and scripts without a Trainer) --------------

    def record_checkpoint(self, path: Path, step: int) -> tuple[dict[str, str], str]:
        """Hash a saved checkpoint directory and record ``run.checkpoint``."""
        self.sink.check()
        self._flush_metrics()
        files, root = hash_directory(path)
        prefix = self.checkpoint_hook(path, files, root) if self.checkpoint_hook else None
        self.last_checkpoint = (path, files, root)
        self._emit("run.checkpoint", step=step, object_prefix=prefix, files=files, root=root)
        return files, root

    def record_completed(self, *, steps: int, files: dict[str, str] | None, root: str | None,
                         model: str | None = None) -> None:
        self._flush_metrics()
        self.ended = "completed"
        self._emit("run.completed", model=model or "model_" + self.run.removeprefix("run_"), steps=steps,
                   epsilon=self.epsilon, files=files, root=root)

    def record_halted(self, *, step: int, checkpoint_root: str | None, decision: int | None = None) -> None:
        self._flush_metrics()
        self.ended = "halted"
        self._emit("run.halted", step=step, decision=decision, checkpoint_root=checkpoint_root)

    def record_failed(self, error: BaseException, step: int | None = None) -> None:
        """Record ``run.failed`` with the exception's class and message (best effort)."""
        self.ended = "failed"
        with contextlib.suppress(Exception):
            self._flush_metrics()
        message = str(error)[:2000]
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
        step = self.step if step is None else step
        self.sink.emit([self.envelope("run.failed", {"run": self.run, "step": step, "error": text})])

    @contextlib.contextmanager
    def guard(self) -> Iterator[AuditCallback]:
        """``with callback.guard(): trainer.train()`` records ``run.failed`` if training raises."""
        try:
            yield self
        except BaseException as e:
            if self.ended is None:
                try:
                    self.record_failed(e)
                    self.sink.flush()
                except Exception as sink_error:  # the sink itself is what failed
                    e.add_note(f"run.failed could not be recorded: {sink_error}")
            raise
