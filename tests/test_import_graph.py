"""The package's modules import each other without a loop.

A loop means no module in it can be read, changed or tested without the others; the one we had
(``_config`` -> ``_batch`` -> ``_sources`` -> ``_microphone`` -> ``_config``) came from option
models that built SDK objects. This walks the source, not ``sys.modules``, so an import hidden
inside a function counts as much as one at the top. Three kinds do not count: imports under
``if TYPE_CHECKING:`` (they never run), optional-dependency imports (in a ``try`` that catches
``ImportError`` or ``ModuleNotFoundError``: the module may be missing, so nothing can rest on
it), and imports inside a function marked ``@deprecated`` (a shim kept for callers until its
removal, the one sanctioned way back to a lower layer).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "speechmatics_modes"


def module_name(root: Path, path: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Each module of the package under ``root`` and the package modules it imports."""
    paths = {module_name(root, path): path for path in sorted(root.rglob("*.py"))}
    return {
        name: set(_imported(name, path, set(paths), is_package=path.name == "__init__.py"))
        for name, path in paths.items()
    }


def _imported(name: str, path: Path, modules: Iterable[str], *, is_package: bool) -> Iterator[str]:
    package = name if is_package else name.rpartition(".")[0]
    for node in _counted_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = _absolute(node, package)
            # "from . import x" names a submodule when one exists, else an attribute of base
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        yield from (target for target in targets if target in modules and target != name)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def _counted_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement but those under TYPE_CHECKING, optional ones and deprecated shims."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from (child for branch in node.orelse for child in _counted_imports_of(branch))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_deprecated(node):
            continue
        elif isinstance(node, ast.Try) and _catches_import_error(node):
            for part in (node.handlers, node.orelse, node.finalbody):
                yield from (child for branch in part for child in _counted_imports_of(branch))
        else:
            yield from _counted_imports(node)


def _counted_imports_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _counted_imports(node)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(node: ast.Try) -> bool:
    caught = {
        name.id
        for handler in node.handlers
        for name in ast.walk(handler.type or ast.Name("BaseException"))
        if isinstance(name, ast.Name)
    }
    return bool(caught & {"ImportError", "ModuleNotFoundError"})


def _is_deprecated(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if (isinstance(target, ast.Name) and target.id == "deprecated") or (
            isinstance(target, ast.Attribute) and target.attr == "deprecated"
        ):
            return True
    return False


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import loop as a path that returns to its start, or ``None`` if there is none."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path = [start]
        pending = [iter(sorted(graph[start]))]
        while pending:
            following = next(pending[-1], None)
            if following is None:
                pending.pop()
                done.add(path.pop())
            elif following in path:
                return [*path[path.index(following) :], following]
            elif following not in done:
                path.append(following)
                pending.append(iter(sorted(graph[following])))
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) > 20, "the walk found too few modules to mean anything"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The checker itself: a loop through a function-level import is found, and named."""
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "_a.py": "from ._b import thing\n",
            "_b.py": "def thing():\n    from . import _c\n",
            "_c.py": "from speechmatics_fake._a import x\n",
        },
    )
    assert find_cycle(import_graph(package)) == [
        "speechmatics_fake._a",
        "speechmatics_fake._b",
        "speechmatics_fake._c",
        "speechmatics_fake._a",
    ]


@pytest.mark.parametrize(
    "guarded",
    [
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._a import x\n",
        "from typing_extensions import deprecated\n"
        "@deprecated('going')\ndef old():\n    from ._a import x\n",
        "def optional():\n    try:\n        from ._a import x\n"
        "    except ModuleNotFoundError:\n        x = None\n",
    ],
    ids=["TYPE_CHECKING", "deprecated", "optional"],
)
def test_imports_that_never_bind_the_layers_do_not_count(tmp_path: Path, guarded: str) -> None:
    package = _write_package(
        tmp_path, {"__init__.py": "", "_a.py": "from ._b import y\n", "_b.py": guarded}
    )
    assert find_cycle(import_graph(package)) is None
    assert import_graph(package)["speechmatics_fake._a"] == {"speechmatics_fake._b"}


def _write_package(tmp_path: Path, files: Mapping[str, str]) -> Path:
    package = tmp_path / "speechmatics_fake"
    package.mkdir()
    for name, text in files.items():
        (package / name).write_text(text, encoding="utf-8")
    return package
