"""The import rules of docs/architecture.md ("Layers"), read from the source with `ast`.

1. `tax` is pure: no Flask, no SQLAlchemy, nothing of abowerk's other packages.
2. `saas.kernel` imports only `tax` and itself of abowerk's packages.
3. Domain modules never import the shell (HTTP, CLI, worker wiring, app factory, the
   metrics/GDPR/ops shells, providers): side effects go upwards as outbox rows or handlers.
   A domain package's own `api`, `*_api`, `cli`, `tasks` and `middleware` modules are shell
   modules living beside it (its `schemas` validate input for the use cases: domain).
   `saas.observability` (Prometheus instruments) is imported by every layer above the kernel.
4. Subscriptions never import billing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tax", "saas", "billing", "compliance")
SHELL_PACKAGES = (
    "saas.app",
    "saas.http",
    "saas.cli",
    "saas.worker",
    "saas.health",
    "saas.wsgi",
    "saas.metrics",
    "saas.gdpr",
    "saas.ops",
    "saas.portal",
    "saas.dashboard",
    "compliance.providers",
)
SHELL_MODULE_NAMES = frozenset({"api", "cli", "tasks", "middleware"})
DOMAIN_PACKAGES = (
    "saas.tenants",
    "saas.customers",
    "saas.auth",
    "saas.events",
    "saas.catalog",
    "saas.subscriptions",
    "saas.testclocks",
    "saas.webhooks",
    "saas.mail",
    "saas.consents",
    "billing",
    "compliance",
)


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def is_shell(module: str) -> bool:
    if _within(module, SHELL_PACKAGES):
        return True
    if _within(module, ("saas.kernel", "tax")):
        return False
    last = module.rsplit(".", 1)[-1]
    return last in SHELL_MODULE_NAMES or last.endswith("_api")


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic scripts: run by the CLI, outside the layers
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            # `from saas.http import problems` imports the module `saas.http.problems`
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _ours(imported: str) -> bool:
    return imported.split(".", maxsplit=1)[0] in PACKAGES


def violations() -> list[str]:
    found = []
    for module, path in _modules():
        for imported in _imports(path):
            top = imported.split(".")[0]
            if module.startswith("tax") and (
                top in ("flask", "sqlalchemy") or (_ours(imported) and top != "tax")
            ):
                found.append(f"{module} → {imported}: tax is pure")
            elif _within(module, ("saas.kernel",)) and (
                _ours(imported) and not _within(imported, ("saas.kernel", "tax"))
            ):
                found.append(f"{module} → {imported}: the kernel imports only tax")
            elif (
                _within(module, DOMAIN_PACKAGES)
                and not is_shell(module)
                and _ours(imported)
                and is_shell(imported)
            ):
                found.append(f"{module} → {imported}: domain code imports the shell")
            if _within(module, ("saas.subscriptions",)) and top == "billing":
                found.append(f"{module} → {imported}: subscriptions never import billing")
    return sorted(set(found))


def test_imports_follow_the_layers_when_read_from_source() -> None:
    assert violations() == []


def test_rule_catches_an_upward_import_when_one_is_written() -> None:
    # the checker itself: a domain module importing the HTTP layer is a violation
    assert is_shell("saas.http.problems") and is_shell("billing.invoices.api")
    assert not is_shell("billing.invoices.services") and not is_shell("saas.kernel.tasks")
