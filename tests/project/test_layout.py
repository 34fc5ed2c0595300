"""The code's shape holds: the core's layers import only the layers below them, the core never imports
the front doors, cli/ -> flows/ -> tasks/ -> core, blocks/ -> core, devstack/ (not shipped) -> any of them;
the front doors (cli/, flows/) take from the core only the catalogue and what renders it, and stay small;
and every module says what it holds."""

from __future__ import annotations

import ast
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# the core's layers, bottom up: a module may import its own layer and the ones below
LAYERS = [
    {"errors", "settings", "publish_settings", "posting_plan", "configs", "money", "prices"},
    {"store"},
    {"ledger"},
    {"claims"},
    {"views"},
    {"intake", "llm"},
    {"generation"},
    {"publish", "batches", "engagement"},
    {"run"},
    {"ops", "rehearsal"},
    {"commands"},
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}
SHIPPED = ("content_pipeline", "cli", "flows", "tasks", "blocks")  # the wheel's packages
TOP = {*SHIPPED, "devstack"}
ALLOWED = {
    "cli": {"flows", "content_pipeline"},
    "flows": {"tasks", "blocks", "content_pipeline"},
    "tasks": {"content_pipeline"},
    "blocks": {"content_pipeline"},
    "devstack": {"cli", "flows", "tasks", "blocks", "content_pipeline"},  # the dev stack may use anything shipped
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
        if top in ("prefect", "cli", "flows", "tasks", "blocks", "devstack"):
            wrong.append(name)
        elif top == "content_pipeline" and rest:
            there = rest.split(".")[0]
            if there in LEVEL and LEVEL[there] > LEVEL[here]:
                wrong.append(name)
    assert wrong == [], f"{here} (layer {LEVEL[here]}) imports upward: {wrong}"


@pytest.mark.parametrize("package", ["cli", "flows", "tasks", "blocks", "devstack"])
def test_the_prefect_layers_import_in_one_direction(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in modules(package)
        for name in imported(path)
        if name.split(".")[0] in TOP and name.split(".")[0] != package and name.split(".")[0] not in ALLOWED[package]
    }
    assert wrong == set()


def wheel_packages() -> set[str]:
    """The top-level packages the wheel ships: those `[tool.setuptools.packages.find] include` matches."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    return {name for name in found if any(fnmatch(name, pattern) for pattern in include)}


def test_nothing_shipped_imports_the_dev_stack() -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for package in sorted(wheel_packages())
        for path in modules(package)
        for name in imported(path)
        if name.split(".")[0] == "devstack"
    }
    assert wrong == set()


def test_the_wheel_leaves_out_the_dev_stack() -> None:
    """setuptools ships the packages `[tool.setuptools.packages.find] include` matches: every shipped one, and
    not devstack/ (nor a module of it)."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert (ROOT / "devstack" / "__init__.py").is_file()
    assert set(SHIPPED) <= wheel_packages() and "devstack" not in wheel_packages(), wheel_packages()
    dev = ["devstack", *(f"devstack.{p.stem}" for p in modules("devstack"))]
    assert [name for name in dev if any(fnmatch(name, pattern) for pattern in include)] == [], include


def test_every_module_has_a_one_line_docstring_and_fits_in_one_sitting() -> None:
    missing, long = [], []
    for package in (*SHIPPED, "devstack"):
        for path in modules(package):
            tree = ast.parse(path.read_text())
            doc = ast.get_docstring(tree)
            if not doc:
                missing.append(str(path.relative_to(ROOT)))
            if len(path.read_text().splitlines()) > 400:
                long.append(str(path.relative_to(ROOT)))
    assert missing == [] and long == []


# what a front door may take from the core: the catalogue, the settings and errors, the reporter interface,
# the targets and approvals publishing asks it for, health's probe type, and the rehearsal server (fake-llm)
PACKAGES = ("content_pipeline.commands", "content_pipeline.rehearsal")
MODULES = {
    "content_pipeline.errors",
    "content_pipeline.settings",
    "content_pipeline.money",
    "content_pipeline.store",
    "content_pipeline.run",
    "content_pipeline.run.reporter",
    "content_pipeline.publish.connect",
    "content_pipeline.engagement.connect",
    "content_pipeline.engagement.source",
    "content_pipeline.publish.governance",
    "content_pipeline.publish.plan",
    "content_pipeline.publish.targets",
    "content_pipeline.ops.health",
}
MAX_LINES = {"cli": 700, "flows": 450}  # each package's whole size
MAX_FUNCTION = 40  # lines of one function


def _core_modules(path: Path) -> set[str]:
    """The core modules `path` imports (from-imports: the module, not the names)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("content_pipeline"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("content_pipeline"))
    return found


@pytest.mark.parametrize("package", ["cli", "flows"])
def test_a_front_door_imports_from_the_core_only_the_catalogue_and_what_renders_it(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in modules(package)
        for name in _core_modules(path)
        if name not in MODULES and not name.startswith(tuple(p + "." for p in PACKAGES))
    }
    assert wrong == set()


@pytest.mark.parametrize("package", ["cli", "flows"])
def test_a_front_door_stays_small(package: str) -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in modules(package)}
    assert sum(sizes.values()) <= MAX_LINES[package], sizes
    long = [
        f"{path.relative_to(ROOT)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in modules(package)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.end_lineno and node.end_lineno - node.lineno + 1 > MAX_FUNCTION
    ]
    assert long == []


def test_the_flows_and_the_command_line_do_not_import_each_others_commands() -> None:
    """flows/ never imports cli/; in cli/, only the module that runs a command as its flow imports flows."""
    assert not any(n.split(".")[0] == "cli" for p in modules("flows") for n in imported(p))
    to_flows = {
        str(p.relative_to(ROOT)) for p in modules("cli") if any(n.startswith("flows.pipeline") for n in imported(p))
    }
    assert to_flows == {"cli/flow_run.py"}


def config_members() -> dict[str, set[str]]:
    """Each part of the settings (content_pipeline/configs.py) and what it holds, its bases' included."""
    tree = ast.parse((ROOT / "content_pipeline" / "configs.py").read_text())
    found: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            own = {n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
            own |= {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            for base in node.bases:
                own |= found.get(base.id, set()) if isinstance(base, ast.Name) else set()
            found[node.name] = own
    return found


def _reads(scope: ast.AST, name: str) -> set[str]:
    """The attributes read off `name` (or `self.name`) in `scope`."""
    found = set()
    for node in ast.walk(scope):
        if not isinstance(node, ast.Attribute):
            continue
        holder = node.value
        if (isinstance(holder, ast.Name) and holder.id == name) or (
            isinstance(holder, ast.Attribute) and holder.attr == name and ast.unparse(holder.value) == "self"
        ):
            found.add(node.attr)
    return found


def test_a_module_that_takes_a_part_of_the_settings_reads_nothing_else_of_them() -> None:
    """A parameter typed as a part of the settings (StoreConfig, PublishConfig, ...) is read only for what that
    part holds, in its function (or, for an __init__'s, the whole class): the module takes only the part it needs."""
    parts, used, wrong = config_members(), set(), []
    for path in modules("content_pipeline"):
        tree = ast.parse(path.read_text())
        scopes = [(n, n) for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            scopes += [
                (init, cls) for init in cls.body if isinstance(init, ast.FunctionDef) and init.name == "__init__"
            ]
        for fn, scope in scopes:
            for arg in fn.args.args + fn.args.kwonlyargs:
                part = arg.annotation.id if isinstance(arg.annotation, ast.Name) else None
                if part in parts:
                    used.add(part)
                    extra = _reads(scope, arg.arg) - parts[part]
                    wrong += [
                        f"{path.relative_to(ROOT)}:{fn.name}: {arg.arg}.{attr} is not in {part}" for attr in extra
                    ]
    assert wrong == []
    assert used == set(parts), set(parts) - used  # every part is taken by some module


def test_the_tests_mirror_the_source_tree_and_share_helpers_only_through_support() -> None:
    """Each test module sits under the folder of what it tests (tests/core/<layer>/, tests/cli/, ...); a test
    module imports shared code from tests.support (or conftest), never from another test module."""
    tests = ROOT / "tests"
    core = {p.name for p in (ROOT / "content_pipeline").iterdir() if (p / "__init__.py").is_file()}
    assert {p.name for p in (tests / "core").iterdir() if p.is_dir() and p.name != "__pycache__"} <= core
    assert not list(tests.glob("test_*.py")), "a test module at the top of tests/"
    folders = {p.relative_to(tests).parts[0] for p in tests.rglob("test_*.py")}
    assert folders == {"core", "cli", "flows", "devstack", "project"}, folders
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in tests.rglob("*.py")
        for name in imported(path)
        if name.startswith("tests.") and not name.startswith(("tests.support", "tests.conftest"))
    }
    assert wrong == set()
