"""One roles table: ``app/core/roles.py`` owns the role names, their scopes and their groups.

No other module of ``app/`` writes a collection of role names out, compares a role with a
literal name, or hands a literal role name to a role guard; and the table's groups are what the
permission matrix of ``docs/security.md`` says.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.support.paths import ROOT

APP = ROOT / "app"
TABLE = APP / "core" / "roles.py"
NAMES = frozenset({"admin", "overseer", "operator", "auditor", "service"})
# functions whose role arguments decide a permission
ROLE_TAKERS = frozenset({"role_guard", "require_role", "may", "acting_as"})


def _role_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in NAMES


def _collection(node: ast.AST) -> list[ast.AST] | None:
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return list(node.elts)
    if isinstance(node, ast.Dict):
        return [k for k in node.keys if k is not None]
    return None


def _names_in(node: ast.AST) -> bool:
    """``node`` is a role name, or a collection holding one."""
    return _role_name(node) or any(_role_name(e) for e in _collection(node) or ())


def _node_findings(node: ast.AST) -> list[str]:
    out = []
    items = _collection(node)
    if items is not None and sum(map(_role_name, items)) >= 2:
        out.append("a collection of role names")
    if isinstance(node, ast.Compare) and any(map(_names_in, (node.left, *node.comparators))):
        out.append("a role compared with a literal name")
    if isinstance(node, ast.Call):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in ROLE_TAKERS and any(map(_names_in, (*node.args, *(k.value for k in node.keywords)))):
            out.append(f"a literal role name given to {name}()")
    if isinstance(node, ast.Dict) and any(
            isinstance(k, ast.Constant) and k.value == "roles" and _names_in(v)
            for k, v in zip(node.keys, node.values, strict=True)):
        out.append("literal role names in a handler's opt")
    return out


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(ROOT)
    return [f"{where}:{getattr(node, 'lineno', 0)}: {what}" for node in ast.walk(tree)
            for what in _node_findings(node)]


def test_only_the_roles_table_writes_out_role_names() -> None:
    assert TABLE.is_file(), "app/core/roles.py owns the roles"
    found = [finding for path in sorted(APP.rglob("*.py")) if path != TABLE for finding in _findings(path)]
    assert found == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "app" / "x.py"
    sample.parent.mkdir()
    sample.write_text('A = ("overseer", "admin")\nif role == "service": pass\nif r in ("admin",): pass\n'
                      'g = role_guard("admin")\nopt = {"roles": ("admin",)}\nok = ("admin", "x")\n')
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert [f.split(": ", 1)[1] for f in _findings(sample)] == [
            "a collection of role names", "a role compared with a literal name",
            "a role compared with a literal name", "a literal role name given to role_guard()",
            "literal role names in a handler's opt"]
    finally:
        ROOT = saved


def _matrix() -> tuple[list[str], dict[str, set[str]]]:
    """The permission matrix of docs/security.md: (role columns, {row's action: roles with a ✓})."""
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = next(line for line in lines if line.startswith("| action (API route; portal page)"))
    columns = [c.strip() for c in header.strip("|").split("|")][2:]
    rows = {}
    for line in lines[lines.index(header) + 1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(columns) + 2 or set(cells[2]) <= {"-", ":"}:
            continue
        rows[cells[0]] = {role for role, cell in zip(columns, cells[2:], strict=True) if cell == "✓"}
    return columns, rows


def _row(rows: dict[str, set[str]], starts: str) -> set[str]:
    (found,) = [roles for action, roles in rows.items() if action.startswith(starts)]
    return found


def test_the_groups_are_the_documented_matrix() -> None:
    from app.core import roles

    columns, rows = _matrix()
    assert tuple(columns) == roles.ROLES
    assert set(roles.COMPLIANCE_READERS) == _row(rows, "compliance checks, alerts, reports")
    assert set(roles.OVERSIGHT_ROLES) == _row(rows, "halt, resume, reject")
    assert set(roles.PRIVACY_ADMINS) == _row(rows, "set a privacy budget")
    assert set(roles.ADMINS) == _row(rows, "accounts, tokens, TOTP reset")
    assert set(roles.JOB_SUBMITTERS) == _row(rows, "submit or cancel a job")
    # the orders some refusals and declared permissions show, unchanged
    assert roles.ROLES == ("admin", "overseer", "operator", "auditor", "service")
    assert roles.OVERSIGHT_ROLES == ("overseer", "admin")
    assert roles.COMPLIANCE_READERS == ("admin", "auditor", "overseer")
    assert roles.JOB_SUBMITTERS == ("operator", "admin")
    assert roles.FREEZERS == ("overseer", "admin", "system")
    assert roles.DATASET_IMPORTERS == ("admin", "operator")


def test_scopes_and_second_factor_are_the_documented_ones() -> None:
    from app.core import roles

    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    para = " ".join(text.split("Scopes per role", 1)[1].split("\n\n", 1)[0].split())
    documented = {m[0]: set(m[1].split()) for m in re.findall(r"`(\w+)` `([a-z: ]+)`", para)}
    assert "`admin` all seven" in para and len(roles.ALL_SCOPES) == 7
    documented["admin"] = set(roles.ALL_SCOPES)
    assert {r: set(s) for r, s in roles.ROLE_SCOPES.items() if r != roles.SERVICE} == documented
    assert roles.ROLE_SCOPES[roles.SERVICE] == frozenset()
    assert "**Required for `admin` and `overseer`** (`TOTP_ROLES`)" in text
    assert frozenset({"admin", "overseer"}) == roles.TOTP_ROLES
    assert [r.name for r in roles.TABLE] == list(roles.ROLES)
    assert all(r.meaning for r in roles.TABLE)


def test_the_table_stays_light() -> None:
    """``app.cli`` imports the table at start-up: it must not pull in SQLAlchemy or Litestar."""
    import subprocess
    import sys

    probe = "import sys, app.core.roles; print([m for m in ('sqlalchemy', 'litestar') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
