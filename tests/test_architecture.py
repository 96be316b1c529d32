"""The import rules of docs/STYLE.md, held by parsing every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "mlpcli"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", [p for p in MODULES if "nn" in p.relative_to(PACKAGE).parts], ids=_relative)
def test_nn_imports_only_numpy_and_the_standard_library(path: Path) -> None:
    allowed = {"numpy", "__future__", "typing", "dataclasses", "collections", "math"}
    for name in _imports(path):
        assert name.split(".")[0] in allowed or name.startswith("mlpcli.nn"), f"{_relative(path)} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_layers_import_one_way(path: Path) -> None:
    in_cli = "cli" in path.relative_to(PACKAGE).parts or path.name == "__main__.py"  # the entry point runs the CLI
    for name in _imports(path):
        top = name.split(".")[0]
        renders = in_cli or "api" in path.relative_to(PACKAGE).parts  # the notebook API shows progress too
        if not in_cli:
            assert not name.startswith("mlpcli.cli"), f"{_relative(path)} imports the CLI"
        if not renders:
            assert top not in ("typer", "rich"), f"{_relative(path)} renders ({name}): only mlpcli/cli may"
        if top == "yaml":
            assert path.name == "config.py", f"{_relative(path)} imports yaml: only config.py may"
        assert top != "pickle", f"{_relative(path)} imports pickle"


# The layers, bottom to top: a module imports only from its own folder or a lower layer.
LAYERS = [
    {"nn"},
    {"<root>"},
    {"files"},
    {"data"},
    {"runs", "lecture", "inference"},
    {"training"},
    {"sweep", "serve", "api"},
    {"cli"},
]
RANK = {folder: rank for rank, folders in enumerate(LAYERS) for folder in folders}


def _folder(module: str) -> str:
    """The layer folder of a dotted module name under mlpcli ("<root>" for mlpcli/*.py)."""
    parts = module.split(".")
    if len(parts) >= 2 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return "cli" if parts[-1] == "__main__" else "<root>"


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_folders_import_only_downwards(path: Path) -> None:
    here = _folder(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
    for name in _imports(path):
        if name.split(".")[0] != "mlpcli" or name == "mlpcli":
            continue
        there = _folder(name)
        if path == PACKAGE / "__init__.py" and there == "api":
            continue  # the package hands out its Python API lazily (mlpcli.train, ...)
        assert there == here or RANK[there] < RANK[here], f"{_relative(path)} ({here}) imports {name} ({there})"


def test_no_print_in_library_code() -> None:
    for path in MODULES:
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", f"print() in {_relative(path)}"


def test_help_imports_no_heavy_library() -> None:
    """`mlpcli --help` starts fast: numpy, Pillow, requests, pydantic and yaml load only when needed."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.argv = ['mlpcli', '--help']\n"
        "from mlpcli.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'PIL', 'requests', 'pydantic', 'yaml') if m in sys.modules]\n"
        "sys.stderr.write(repr(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.strip() == "[]"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _edges(path: Path, modules: set[str]) -> set[str]:
    """The mlpcli modules a module imports, at the top or inside functions; not those under TYPE_CHECKING, nor
    the package's lazy hand-out of its Python API (mlpcli/__init__.py's __getattr__)."""
    tree = ast.parse(path.read_text())
    guarded = [
        node for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
    ]
    skipped = {id(n) for node in guarded for n in ast.walk(node)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    if path == PACKAGE / "__init__.py":
        out = {m for m in out if not m.startswith("mlpcli.api")}
    return {m for m in out if m in modules} - {_module(path)}


def test_no_import_cycles() -> None:
    modules = {_module(p): p for p in MODULES}
    graph = {name: _edges(path, set(modules)) for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(name) :], name]))
        if name in done:
            return
        for other in sorted(graph[name]):
            visit(other, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_deep_modules_take_the_version_from_its_own_module() -> None:
    for path in MODULES:
        if path != PACKAGE / "__init__.py":
            assert "from mlpcli import __version__" not in path.read_text(), _relative(path)


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= 400, f"{_relative(path)} has {lines} lines: split it by what each part does"
