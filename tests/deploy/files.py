"""Readers for the deployment files, shared by the tests in this package.

Each file is parsed the way its tool reads it (YAML documents, Dockerfile instructions,
systemd's INI dialect, shell words), so the tests compare meanings, not strings.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OPERATIONS = ROOT / "docs" / "operations.md"
SECRET_TEMPLATE = K8S / "secret.example.yaml"


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_manifests() -> list[Path]:
    """Every Kubernetes manifest (the kustomization file is kustomize's, not the API's)."""
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def k8s_objects() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object, over all manifests."""
    return {
        (doc["kind"], doc["metadata"]["name"]): doc
        for path in k8s_manifests()
        for doc in yaml_documents(path)
    }


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # type: ignore[no-any-return]


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def exec_form(args: str) -> list[str]:
    """The argv of a CMD/ENTRYPOINT/RUN in exec (JSON) form, or its shell words otherwise."""
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list)
        return [str(v) for v in value]
    return shlex.split(args)


def systemd_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (a key may repeat), systemd's INI dialect."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith(("#", ";")) or not line:
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def shell_blocks(markdown: str, heading: str) -> list[list[str]]:
    """Commands (shell words, comments dropped) of the ```sh blocks under a `## heading`."""
    section = re.split(r"^## ", markdown, flags=re.MULTILINE)
    body = next((s for s in section if s.startswith(heading + "\n")), None)
    assert body is not None, f"no section `## {heading}`"
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", body, flags=re.DOTALL):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def script_commands(path: Path) -> list[list[str]]:
    """Simple commands of a shell script, in order (`exec` and `source` lines resolved)."""
    commands = []
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0] in ("source", ".", "set"):
            continue
        if words[0] == "exec":
            words = words[1:]
        commands.append(words)
    return commands


def seconds(duration: str | int) -> float:
    """`35s`, `1m30s`, `40s`, `45` (compose and systemd durations) in seconds."""
    if isinstance(duration, int):
        return float(duration)
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|min|m|h)?", duration):
        factor = {"ms": 0.001, "s": 1, "": 1, "m": 60, "min": 60, "h": 3600}[unit]
        total += float(amount) * factor
    return total


def all_shell_commands(markdown: str) -> list[list[str]]:
    """Commands of every ```sh block of a Markdown text (lines that shlex cannot read, such
    as heredocs or unbalanced quotes across lines, are skipped)."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.DOTALL):
        for line in block.splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            if words:
                commands.append(words)
    return commands
