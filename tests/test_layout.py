"""The code's shape holds: the core's layers import only the layers below them, the core never imports
the Prefect layers, flows/ -> tasks/ -> core, blocks/ -> core, and every module says what it holds."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the core's layers, bottom up: a module may import its own layer and the ones below
LAYERS = [
    {"errors", "settings", "money"},
    {"store"},
    {"ledger"},
    {"claims"},
    {"views"},
    {"intake", "llm"},
    {"generation"},
    {"publish", "batches"},
    {"run"},
    {"ops", "rehearsal"},
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}
TOP = {"flows", "tasks", "blocks", "content_pipeline"}
ALLOWED = {
    "flows": {"tasks", "blocks", "content_pipeline"},
    "tasks": {"content_pipeline"},
    "blocks": {"content_pipeline"},
}


def modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "sample" not in p.parts)


def imported(path: Path) -> set[str]:
    """Every absolute module name the file imports (TYPE_CHECKING imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def layer(path: Path) -> str:
    return path.relative_to(ROOT / "content_pipeline").parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", modules("content_pipeline"), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_core_module_imports_only_its_own_layer_and_those_below(path: Path) -> None:
    here = layer(path)
    if here == "__init__":
        return
    wrong = []
    for name in imported(path):
        top, _, rest = name.partition(".")
        if top in ("prefect", "flows", "tasks", "blocks"):
            wrong.append(name)
        elif top == "content_pipeline" and rest:
            there = rest.split(".")[0]
            if there in LEVEL and LEVEL[there] > LEVEL[here]:
                wrong.append(name)
    assert wrong == [], f"{here} (layer {LEVEL[here]}) imports upward: {wrong}"


@pytest.mark.parametrize("package", ["flows", "tasks", "blocks"])
def test_the_prefect_layers_import_in_one_direction(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in modules(package)
        for name in imported(path)
        if name.split(".")[0] in TOP and name.split(".")[0] != package and name.split(".")[0] not in ALLOWED[package]
    }
    assert wrong == set()


def test_every_module_has_a_one_line_docstring_and_fits_in_one_sitting() -> None:
    missing, long = [], []
    for package in ("content_pipeline", "flows", "tasks", "blocks"):
        for path in modules(package):
            tree = ast.parse(path.read_text())
            doc = ast.get_docstring(tree)
            if not doc:
                missing.append(str(path.relative_to(ROOT)))
            if len(path.read_text().splitlines()) > 400:
                long.append(str(path.relative_to(ROOT)))
    assert missing == [] and long == []
