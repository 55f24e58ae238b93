"""The job form: a training job as fields, or as JSON (``GET /runs/new``, posted to ``/runs``).

The fields are the spec's (``trainers.spec.TrainingSpec``) with its limits stated on them; the
dataset and version are picked from what this log imported (a rejected version is shown, not
offered), with the privacy budget left next to each dataset. The JSON view (``Edit as JSON``) holds
an example spec; the rule, said on the page: **if the JSON text was changed, it is submitted and
the fields are ignored; otherwise the fields are**. A form without the example (a script posting
``spec`` alone) is a JSON submission. A refusal answers 400 with the form as it was sent and one
message; a job accepted redirects to its run page.
"""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, dataclass, fields
from typing import Annotated, Any

import orjson
from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from ledger.errors import LedgerError
from trainers.spec import ACCOUNTANTS, JOB_KINDS, DPSettings, TrainingSpec

from ..core.deps import keyring_of
from ..core.errors import AppError
from ..core.problems import client_detail
from ..core.roles import JOB_SUBMITTERS
from ..datasets import describe_dataset, list_datasets
from ..jobs import service as jobs
from .pickers import RECENT_RUNS, dataset_label
from .web import Req, actor_of, db_of, log_of, page, queue_of, redirect, role_guard, viewer

__all__ = ["JobFormController", "MAX_SPEC"]

MAX_SPEC = 16_384  # characters of the JSON view, stated next to it
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@dataclass(frozen=True)
class Number:
    """A numeric field of the spec as the form shows it: bounds as the spec checks them (``min``/
    ``max`` attributes; an exclusive bound is stated in the hint) and whether empty leaves it out."""

    name: str
    label: str
    integer: bool
    hint: str
    min: str | None = None
    max: str | None = None
    optional: bool = False  # empty: not in the spec (the spec's default, or none)
    dp: bool = False  # a field of the spec's ``dp`` object

    @property
    def step(self) -> str:
        return "1" if self.integer else "any"


TRAINING = (
    Number("learning_rate", "Learning rate", False, "Greater than 0 and less than 1.", "0", "1"),
    Number("epochs", "Epochs", True, "A whole number, at least 1.", "1"),
    Number("batch_size", "Batch size", True, "Preference pairs per step: at least 1.", "1"),
    Number("max_steps", "Max steps", True, "At least 1; empty: the epochs decide.", "1", optional=True),
    Number("save_steps", "Save a checkpoint every (steps)", True,
           "At least 1; empty: a checkpoint at the end only.", "1", optional=True),
    Number("logging_steps", "Log metrics every (steps)", True, "At least 1.", "1"),
    Number("max_length", "Max tokens per text", True, "At least 8.", "8"),
    Number("seed", "Seed", True, "0 or more.", "0"),
    Number("beta", "β (DPO only)", False, "Greater than 0; reward-model jobs ignore it.", "0"),
)
PRIVACY = (
    Number("target_epsilon", "Target ε", False, "Greater than 0: the noise is calibrated to spend "
           "exactly this by the last step.", "0", optional=True, dp=True),
    Number("noise_multiplier", "Noise multiplier", False, "Greater than 0: ε follows from it and the "
           "number of steps.", "0", optional=True, dp=True),
    Number("delta", "δ", False, "Greater than 0 and less than 1.", "0", "1", dp=True),
    Number("max_grad_norm", "Max gradient norm", False, "Greater than 0: each pair's gradient is "
           "clipped to it.", "0", dp=True),
)
NUMBERS = {f.name: f for f in TRAINING + PRIVACY}
TEXT_FIELDS = ("kind", "base_model", "dataset", "dataset_version", "dp", "dp_mode", "accountant")
FIELD_NAMES = (*TEXT_FIELDS, *NUMBERS)
DP_MODES = ("target_epsilon", "noise_multiplier")


class FieldError(ValueError):
    """A field that is not a number where one is wanted, or a version of another dataset."""


def _shown(value: Any) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def defaults(dataset: str | None) -> dict[str, str]:
    """The fields of a new job: the spec's defaults, a learning rate and DP with a target ε (as the
    example spec has them), the newest dataset (by name) when there is one."""
    spec = {f.name: f.default for f in fields(TrainingSpec) if f.default is not MISSING}
    spec.update({f.name: f.default for f in fields(DPSettings)})
    out = {name: _shown(spec.get(name)) for name in NUMBERS}
    out.update(kind=JOB_KINDS[0], base_model="", dataset=dataset or "", dataset_version="", dp="on",
               dp_mode="target_epsilon", accountant=str(spec["accountant"]), learning_rate="5e-05",
               target_epsilon="8.0")
    return out


def example_spec(dataset: str | None) -> str:
    """A spec to start from: an imported dataset of this log (the newest by name), never an invented one."""
    return json.dumps({"kind": "reward_model", "base_model": "<path to a local model directory>",
                       "dataset": dataset or "<import a dataset first: /datasets>", "learning_rate": 5e-5,
                       "epochs": 1, "batch_size": 8, "dp": {"target_epsilon": 8.0, "delta": 1e-5}}, indent=2)


def _same_text(a: str, b: str) -> bool:
    """The JSON view unchanged (a browser sends a textarea's line ends as CRLF)."""
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


def uses_json(data: dict[str, str]) -> bool:
    """The page's rule: a changed JSON view is submitted, else the fields; ``spec`` without the
    example it started from (a script's post) is JSON."""
    text = data.get("spec", "")
    if "spec_example" not in data:
        return bool(text.strip()) or not any(data.get(k) for k in FIELD_NAMES)
    return bool(text.strip()) and not _same_text(text, data["spec_example"])


def _number(f: Number, text: str) -> int | float | None:
    text = text.strip()
    if not text:
        return None
    if f.integer:
        if not re.fullmatch(r"[+-]?\d+", text):
            raise FieldError(f"{f.name} must be a whole number, not {text!r}")
        return int(text)
    try:
        return float(text)
    except ValueError:
        raise FieldError(f"{f.name} must be a number, not {text!r}") from None


def _version(data: dict[str, str]) -> int | None:
    """``dataset_version``: empty (the newest), ``<dataset>:<n>`` as the picker sends it, or ``n``."""
    picked = data.get("dataset_version", "").strip()
    if not picked:
        return None
    name, _, number = picked.rpartition(":")
    dataset = data.get("dataset", "").strip()
    if name and name != dataset:
        raise FieldError(f"dataset_version: the version picked ({name} version {number}) is not one of "
                         f"{dataset or 'the chosen dataset'}'s: pick one of its versions, or the newest")
    if not number.isdigit():
        raise FieldError(f"dataset_version must be a version number, not {picked!r}")
    return int(number)


def spec_of_fields(data: dict[str, str]) -> dict[str, Any]:
    """The spec the fields say: empty optional numbers left out, ``dp`` only when ticked and then
    with the chosen one of target ε and noise multiplier. The spec's own checks come after."""
    doc: dict[str, Any] = {k: data[k].strip() for k in ("kind", "base_model", "dataset")
                           if data.get(k, "").strip()}
    if (version := _version(data)) is not None:
        doc["dataset_version"] = version
    dp: dict[str, Any] = {}
    mode = data.get("dp_mode", "target_epsilon")
    for f in NUMBERS.values():
        if f.dp and f.name in DP_MODES and f.name != mode:
            continue  # the other way to set the noise: what it holds is kept on the page, not sent
        value = _number(f, data.get(f.name, ""))
        if value is not None:
            (dp if f.dp else doc)[f.name] = value
    if data.get("dp") == "on":
        doc["dp"] = {**dp, "accountant": data.get("accountant", "prv")}
    return doc


def _field_of(message: str) -> str | None:
    """The field a refusal names first (``bad job spec: epochs must be...``), to mark it."""
    found = re.match(r"(?:bad job spec: )?(?:dp\.)?([a-z_]+)\b", message)
    return found.group(1) if found and found.group(1) in FIELD_NAMES else None


async def _dataset_choices(request: Req) -> list[dict[str, Any]]:
    """Each imported dataset with its versions (newest first) and the budget left."""
    db = db_of(request)
    out = []
    for d in await list_datasets(db):
        described = await describe_dataset(db, d["dataset"])
        out.append({"dataset": d["dataset"], "label": f"{d['dataset']} · {dataset_label(d)}",
                    "versions": [{"value": f"{d['dataset']}:{v['version']}", "version": v["version"],
                                  "records": v["records"], "rejected": v["rejected"]}
                                 for v in reversed(described["versions"])]})
    return out


async def form_page(request: Req, data: dict[str, str] | None = None, error: str | None = None,
                    status_code: int = 200, json_open: bool = False) -> Template:
    """The form: new (``data`` None), or as it was sent, with ``error``."""
    choices = await _dataset_choices(request)
    newest = choices[-1]["dataset"] if choices else None
    example = example_spec(newest)
    values = defaults(newest)
    if data is not None:
        values.update({k: data[k] for k in FIELD_NAMES if k in data})
        if "spec_example" in data or "kind" in data:  # the form was sent: an unticked box is absent
            values["dp"] = data.get("dp", "")
    recent = await jobs.list_jobs(db_of(request), limit=RECENT_RUNS)
    base_models = list(dict.fromkeys(str(j.spec["base_model"]) for j in recent if j.spec.get("base_model")))
    return page(request, "job_form.html", status_code=status_code, title="Submit a training job",
                values=values, datasets=choices, base_models=base_models, kinds=JOB_KINDS,
                accountants=ACCOUNTANTS, training=TRAINING, privacy=PRIVACY,
                spec_text=example if data is None else data.get("spec", ""),
                spec_example=example if data is None else data.get("spec_example", example),
                json_open=json_open, max_spec=MAX_SPEC, error=error,
                error_field=_field_of(error or "") if error and not json_open else None)


class JobFormController(Controller):
    path = "/runs"
    guards = [role_guard(*JOB_SUBMITTERS)]

    @get("/new")
    async def new(self, request: Req, edit: str | None = None) -> Template:
        """The empty form; ``?edit=json`` opens the JSON view."""
        return await form_page(request, json_open=edit == "json")

    @post("/")
    async def submit(self, request: Req, data: Form) -> Template | Redirect:
        """Submit a job (the fields, or the JSON view: :func:`uses_json`) for the signed-in operator."""
        as_json = uses_json(data)
        try:
            if as_json:
                # as the API: NaN, Infinity and deep nesting are refused
                doc = orjson.loads(data.get("spec", ""))
            else:
                doc = spec_of_fields(data)
            job = await jobs.submit(db_of(request), log_of(request), keyring_of(request), queue_of(request),
                                    doc, actor_of(request),
                                    submitted_by=getattr(viewer(request), "account", "portal"))
        except json.JSONDecodeError as e:
            return await form_page(request, data, f"the spec is not JSON: {e}", 400, json_open=True)
        except FieldError as e:
            return await form_page(request, data, str(e), 400, json_open=as_json)
        except (LedgerError, AppError) as e:
            return await form_page(request, data, client_detail(e), 400, json_open=as_json)
        return redirect(f"/runs/{job.run}", f"Job {job.run} submitted and queued.", "success", request)
