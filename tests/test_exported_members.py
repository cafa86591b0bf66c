"""The public surface is exactly ``speechmatics_modes.__all__``: sorted and complete."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import speechmatics_modes


def test_all_is_sorted() -> None:
    assert speechmatics_modes.__all__ == sorted(speechmatics_modes.__all__)


def test_all_is_complete() -> None:
    for name in speechmatics_modes.__all__:  # each is imported on first use
        getattr(speechmatics_modes, name)
    public = {
        name
        for name, value in vars(speechmatics_modes).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(speechmatics_modes.__all__)


def test_public_names_say_they_are_ours() -> None:
    for name in speechmatics_modes.__all__:
        value = getattr(speechmatics_modes, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("speechmatics_modes."), (
                f"{name} leaks a foreign type"
            )
            assert value.__doc__, f"{name} has no docstring"


def test_deprecated_leftovers_warn_and_name_their_replacement() -> None:
    from speechmatics_modes.local import run_server

    assert "LocalServer" in run_server.__deprecated__  # type: ignore[attr-defined]
    for method in (
        speechmatics_modes.TranscriptionOptions.to_batch,
        speechmatics_modes.TranscriptionOptions.to_realtime,
        speechmatics_modes.AudioFormat.to_realtime,
        speechmatics_modes.BatchOptions.to_job_config,
    ):
        assert "removed in 0.2" in method.__deprecated__  # type: ignore[attr-defined]


def test_tests_benchmarks_and_examples_import_public_names_from_the_public_door() -> None:
    """A public name imported from a private module pins that module's name for no reason."""
    import speechmatics_modes.local

    root = Path(__file__).resolve().parents[1]
    doors = {
        "speechmatics_modes": set(speechmatics_modes.__all__),
        "speechmatics_modes.local": set(speechmatics_modes.local.__all__),
    }
    found = []
    for path in sorted(
        [*root.glob("tests/**/*.py"), *root.glob("benchmarks/*.py"), *root.glob("examples/*.py")]
    ):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            door = max(
                (d for d in doors if node.module.startswith(d + "._")), default=None, key=len
            )
            if door is None:
                continue
            found += [
                f"{path.relative_to(root)}:{node.lineno} {alias.name} from {node.module}"
                for alias in node.names
                if alias.name in doors[door]
            ]
    assert not found, "import these from the package instead:\n" + "\n".join(found)


def test_type_checkers_see_what_the_interpreter_imports() -> None:
    """The ``TYPE_CHECKING`` imports in ``__init__`` name the same modules as ``_EXPORTS``."""
    source = Path(speechmatics_modes.__file__).read_text(encoding="utf-8")
    guarded = next(
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "typing.TYPE_CHECKING"
    )
    seen = {
        statement.module: tuple(alias.name for alias in statement.names)
        for statement in guarded.body
        if isinstance(statement, ast.ImportFrom)
    }
    assert seen == speechmatics_modes._EXPORTS


def test_an_unknown_name_is_an_attribute_error() -> None:
    assert not hasattr(speechmatics_modes, "transcribe_everything")


def test_importing_the_package_loads_no_sdk() -> None:
    """A batch job must not pay for the real-time SDK, nor anyone for the local server."""
    probe = (
        "import sys, speechmatics_modes; "
        "from speechmatics_modes import BatchOptions, Transcript, transcribe; "
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert loaded.isdisjoint(
        {"speechmatics.rt", "speechmatics.batch", "speechmatics_modes.local", "pyaudio"}
    )
