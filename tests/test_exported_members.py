"""The public surface is exactly ``speechmatics_modes.__all__``: sorted and complete."""

from __future__ import annotations

import inspect

import speechmatics_modes


def test_all_is_sorted() -> None:
    assert speechmatics_modes.__all__ == sorted(speechmatics_modes.__all__)


def test_all_is_complete() -> None:
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
    import ast
    from pathlib import Path

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
