"""Every Python snippet in the README and docs/ is valid code that names real public API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import speechmatics_modes

ROOT = Path(__file__).parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SNIPPET = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _snippets() -> list[tuple[str, str]]:
    found = []
    for document in DOCUMENTS:
        for index, match in enumerate(SNIPPET.finditer(document.read_text())):
            found.append((f"{document.name}#{index}", match.group(1)))
    return found


@pytest.mark.parametrize(("where", "code"), _snippets(), ids=[w for w, _ in _snippets()])
def test_snippet_is_valid_python_using_public_names(where: str, code: str) -> None:
    # Top-level await is how the docs show async calls; wrap so it parses as it would run.
    wrapped = "async def _snippet():\n" + "".join(f"    {line}\n" for line in code.splitlines())
    tree = ast.parse(wrapped, filename=where)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "speechmatics_modes":
            for alias in node.names:
                assert alias.name in speechmatics_modes.__all__, f"{where}: {alias.name}"


def test_every_doc_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for document in DOCUMENTS[1:]:
        assert f"docs/{document.name}" in readme, f"README does not link docs/{document.name}"
