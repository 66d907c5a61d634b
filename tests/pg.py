"""A real PostgreSQL server in a temporary folder, for the store tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PASSWORD = "s3cret-Pa55"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is missing; `make test` installs it")
    return found


def _as_postgres(name: str, *args: str) -> list[str]:
    command = [_binary(name), *args]
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start PostgreSQL on a free loopback port; yields a URL that carries a password.

    The server trusts local connections, so the password is accepted and ignored: it is
    there to prove that autotune never prints it.
    """
    folder = Path(tempfile.mkdtemp(prefix="autotune-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data = folder / "data"
    port = _free_port()
    subprocess.run(
        _as_postgres("initdb", "-D", str(data), "-A", "trust", "-U", "postgres"),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _as_postgres(
            "pg_ctl",
            "-D",
            str(data),
            "-o",
            f"-k {folder} -p {port} -h 127.0.0.1",
            "-l",
            str(folder / "log"),
            "-w",
            "start",
        ),
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        yield f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres("pg_ctl", "-D", str(data), "-m", "immediate", "stop"),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)
