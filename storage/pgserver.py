"""A throwaway PostgreSQL cluster on a Unix socket, for the tests and the benchmarks.

Debian's `postgresql` package puts initdb and pg_ctl under /usr/lib/postgresql/<version>/bin,
not on PATH; that directory is preferred over PATH (where a hand-made install could hide
an older server). PostgreSQL refuses to run as root: as root, the cluster is made and run
as the `postgres` OS user, in a directory it owns. The server listens on no TCP port, only
on a socket in its own directory, with fsync off: its data is thrown away.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

USER = "portal"  # the superuser initdb creates; no password on the socket (trust)


def binaries() -> Path | None:
    """The directory holding initdb and pg_ctl: the newest Debian one, else PATH's."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl", path=str(Path(on_path).resolve().parent)):
        return Path(on_path).resolve().parent
    return None


def unavailable() -> str | None:
    """Why no cluster can be started here; None when one can."""
    if binaries() is None:
        return "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on PATH)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` OS user to run the server as"
    return None


class Cluster:
    """`with Cluster() as pg: pg.url("db")`; stopped and removed on leaving."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="portal-pg-"))
        self.data = self.dir / "data"
        self._as: list[str] = []
        bindir = binaries()
        if bindir is None:
            raise RuntimeError(unavailable() or "no PostgreSQL")
        self.bin = bindir
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, cwd=self.dir, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stdout}{done.stderr}")

    def start(self) -> Cluster:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.dir}'"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "start",
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.dir / "server.log"),
            "-o",
            options,
        )
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@/{database}?host={self.dir}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
