"""A throwaway PostgreSQL server for the journal tests: initdb in a temporary directory.

The server binaries come from the system (Debian's ``postgresql`` package puts them in
``/usr/lib/postgresql/<version>/bin``). Without them the tests skip and say why, unless
``SPEECHMATICS_MODES_REQUIRE_POSTGRES=1`` (CI) makes that a failure. PostgreSQL refuses to run
as root, so under root (CI containers) the server runs as ``nobody``; it listens on a free
127.0.0.1 port with trust authentication and no durability (``fsync=off``): it only has to
outlive one test session.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

REQUIRE = "SPEECHMATICS_MODES_REQUIRE_POSTGRES"
_START_SECONDS = 60.0


def _binaries() -> Path | None:
    """The newest installed server's bin directory, or ``None``."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def missing_reason() -> str | None:
    """Why the tests cannot have a server here (skip or fail with it), or ``None``."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'speechmatics-modes[postgres]')"
    if _binaries() is None:
        return "no PostgreSQL server binaries (apt-get install postgresql)"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip locally; fail where the environment promised PostgreSQL (CI)."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1 but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user() -> dict[str, object]:
    """Popen arguments that drop root (PostgreSQL will not run as root); empty otherwise."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


@contextmanager
def running_server() -> Iterator[str]:
    """Start a server; yield the URL of its ``postgres`` database; stop and delete it after."""
    import psycopg

    binaries = _binaries()
    assert binaries is not None
    root = Path(tempfile.mkdtemp(prefix="speechmatics-modes-pg-"))
    drop = _as_server_user()
    if drop:
        os.chown(root, int(drop["user"]), int(drop["group"]))  # type: ignore[call-overload]
    data = root / "data"
    subprocess.run(
        [
            binaries / "initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
        **drop,  # type: ignore[arg-type]
    )
    port = _free_port()
    with (root / "server.log").open("wb") as log:
        server = _start(binaries, data, port, root, log, drop)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        _wait_until_up(psycopg, url, server, root)
        yield url
    finally:
        server.send_signal(signal.SIGQUIT)  # immediate shutdown: nothing here needs keeping
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _start(
    binaries: Path, data: Path, port: int, root: Path, log: IO[bytes], drop: dict[str, object]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            binaries / "postgres",
            "-D",
            data,
            "-p",
            str(port),
            "-k",
            root,
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        **drop,  # type: ignore[arg-type]
    )


def _wait_until_up(psycopg: object, url: str, server: subprocess.Popen[bytes], root: Path) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while True:
        if server.poll() is not None:
            log = (root / "server.log").read_text(errors="replace")
            raise RuntimeError(f"PostgreSQL exited at start:\n{log}")
        try:
            psycopg.connect(url).close()  # type: ignore[attr-defined]
            return
        except psycopg.OperationalError:  # type: ignore[attr-defined]
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def fresh_database(server_url: str, name: str) -> str:
    """Create an empty database on the server; return its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return server_url.rsplit("/", 1)[0] + f"/{name}"
