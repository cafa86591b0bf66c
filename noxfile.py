"""Every way of building, checking and running this project goes through here.

nox -s demo                                the main job: a sample in both modes, no key
nox -s lint typecheck tests examples docs  what CI runs (the README's test command)
nox -s bench                               benchmarks; numbers land in bench-results/
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "typecheck", "tests", "examples", "docs"]

RUNTIME_EXTRAS = ".[local,postgres]"
TEST_DEPS = ["pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6.100"]
DOCS_DEPS = ["mkdocs>=1.6,<2", "mkdocs-material>=9.5,<10", "mkdocstrings[python]>=0.26,<2"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite against the embedded local server (no network, no API key)."""
    session.install("-e", RUNTIME_EXTRAS, *TEST_DEPS)
    _install_microphone_support(session)
    session.run("pytest", *session.posargs)


def _install_microphone_support(session: nox.Session) -> None:
    """PyAudio builds against PortAudio's headers; without them the microphone tests skip.

    CI installs portaudio19-dev (see .ci/run) and sets SPEECHMATICS_MODES_REQUIRE_MIC=1, so
    there a missing PyAudio is a failure, not a skip. Elsewhere a failed build is said in one
    line: pip's pages of compiler output only show with ``nox --verbose``.
    """
    if os.environ.get("SPEECHMATICS_MODES_REQUIRE_MIC") == "1":
        session.install("-e", ".[mic]", silent=True)
        return
    session.install("-e", ".[mic]", silent=True, success_codes=[0, 1], log=False)
    found = session.run("python", "-c", _HAS_PYAUDIO, silent=True, log=False)
    if "yes" not in str(found):
        session.log("PyAudio did not build (no PortAudio headers?): microphone tests will skip")


_HAS_PYAUDIO = "import importlib.util as u; print('yes' if u.find_spec('pyaudio') else 'no')"


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict (with the pydantic plugin) over the package."""
    session.install("-e", RUNTIME_EXTRAS, "mypy>=1.10", "pytest>=8")  # pytest: the plugin
    session.run("mypy", "speechmatics_modes")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: transcribe the bundled sample through batch and real-time, locally.

    It runs in a scratch directory, as a user's would: the sample ships inside the package.
    """
    session.install("-e", RUNTIME_EXTRAS)
    session.chdir(session.create_tmp())
    session.run("speechmatics-modes", "demo", *session.posargs)


@nox.session
def examples(session: nox.Session) -> None:
    """Run every example against the embedded local server, as a newcomer would."""
    session.install("-e", RUNTIME_EXTRAS)
    for example in sorted(Path("examples").glob("*.py")):
        session.run("python", str(example), env={"SPEECHMATICS_MODES_BACKEND": "local"})


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly, then check it and every snippet in the README and
    docs/ against the public API. The site lands in .nox/docs/tmp/site (``mkdocs serve`` shows
    it while you edit); building it needs no network.
    """
    session.install("-e", RUNTIME_EXTRAS, *TEST_DEPS, *DOCS_DEPS)
    site = str(Path(session.create_tmp()) / "site")
    quiet = {"NO_MKDOCS_2_WARNING": "1"}  # a banner about the theme's future, not our docs
    session.run("mkdocs", "build", "--strict", "--site-dir", site, env=quiet)
    session.run(
        "pytest",
        "tests/test_docs.py",
        "tests/test_readme.py",
        "tests/test_docs_site.py",
        *session.posargs,
        env={"DOCS_SITE_DIR": site},
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the local server; JSON, markdown and plots go to bench-results/."""
    session.install("-e", RUNTIME_EXTRAS, "matplotlib>=3.8")
    session.run("python", "-m", "benchmarks", *session.posargs)
