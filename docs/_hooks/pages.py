"""MkDocs hooks: pages that quote the repository instead of copies that would go stale.

``<!-- cli-help: COMMAND -->`` becomes that command's ``--help`` as the parser prints it now (a
command that fails to print its help fails the build), and ``<!-- readme -->`` becomes the
README, its ``docs/`` links made relative, so the home page is the README.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

_MARKER = re.compile(r"<!-- cli-help: ([a-z -]+?) -->")
_README = Path(__file__).parents[2] / "README.md"


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace every marker in a page with what it names."""
    if "<!-- readme -->" in markdown:
        readme = _README.read_text().replace("](docs/", "](")
        markdown = markdown.replace("<!-- readme -->", readme)
    return _MARKER.sub(lambda match: _help_block(match.group(1).split()), markdown)


def _help_block(command: list[str]) -> str:
    env = {**os.environ, "COLUMNS": "100"}
    result = subprocess.run(
        [sys.executable, "-m", "speechmatics_modes", *command, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    shown = " ".join(["speechmatics-modes", *command, "--help"])
    return f"```text\n$ {shown}\n{result.stdout.rstrip()}\n```"
