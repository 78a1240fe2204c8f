"""A real PostgreSQL server for the store tests: initdb + pg_ctl in a temporary folder.

Why this way: the store's promises (insert-or-ignore, roles that cannot read or delete, NOTIFY,
catching up after an outage) are PostgreSQL's own behaviour; only the real server can prove them.
The server listens on a Unix socket only (listen_addresses = ''), never on a TCP port. initdb
refuses to run as root and CI runs as root, so the cluster belongs to an unprivileged user
(created with useradd when missing) and the server runs as that user (runuser / setpriv).
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_USER = "perpdesk-pg"  # the OS user the test server runs as when the tests run as root
SUPERUSER = "postgres"  # the cluster's bootstrap role (initdb -U)


def pg_bindir() -> Path | None:
    """The folder holding initdb/pg_ctl/postgres: PATH first, then /usr/lib/postgresql/*/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(cand, "pg_ctl").exists():
            return Path(cand)
    return None


def _as_user(user: str | None) -> list[str]:
    """The prefix that runs a command as ``user`` (nothing when we are not root)."""
    if user is None:
        return []
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--"]
    info = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={info.pw_uid}", f"--regid={info.pw_gid}", "--init-groups", "--"]


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        PG_USER], check=True, capture_output=True)
    return PG_USER


@dataclass
class PgServer:
    """One running test cluster; ``dsn(db)`` connects as the superuser over the socket."""

    root: Path
    bindir: Path
    user: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def dsn(self, database: str = "postgres", role: str = SUPERUSER) -> str:
        return f"postgresql://{role}@/{database}?host={self.socket_dir}"

    def _ctl(self, *args: str, timeout: float = 60) -> None:
        cmd = [*_as_user(self.user), str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout, cwd=self.root)

    def start(self) -> None:
        opts = f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' -c fsync=off"
        self._ctl("-w", "-l", str(self.root / "server.log"), "-o", opts, "start")

    def stop(self) -> None:
        self._ctl("-w", "-m", "fast", "stop")

    def running(self) -> bool:
        cmd = [*_as_user(self.user), str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]
        return subprocess.run(cmd, capture_output=True, cwd=self.root).returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        cmd = [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
               "-h", str(self.socket_dir), "-U", SUPERUSER, "-d", database, "-c", sql]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name}")
        return name


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    """initdb + start a private cluster; stopped and removed on exit."""
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql; "
                           "`make test` does it)")
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="perpdesk-pg-"))
    try:
        (root / "sock").mkdir()
        if user is not None:
            info = pwd.getpwnam(user)
            os.chmod(root, 0o755)
            for p in (root, root / "sock"):
                os.chown(p, info.pw_uid, info.pw_gid)
        cmd = [*_as_user(user), str(bindir / "initdb"), "-D", str(root / "data"), "-U", SUPERUSER,
               "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"]
        # cwd: the server's user may not enter the folder the tests run from (CI's clone as root)
        subprocess.run(cmd, check=True, capture_output=True, timeout=120, cwd=root)
        server = PgServer(root, bindir, user)
        server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(Exception):
                server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class StoreDb:
    """A database initialised by `perpdesk store init`: URLs of the admin and the two roles."""

    server: PgServer
    name: str

    @property
    def admin(self) -> str:
        return self.server.dsn(self.name)

    @property
    def writer(self) -> str:
        return self.server.dsn(self.name, "perpdesk_writer")

    @property
    def reader(self) -> str:
        return self.server.dsn(self.name, "perpdesk_reader")

    def count(self, table: str) -> int:
        return int(self.server.psql(f"SELECT count(*) FROM perpdesk.{table}", self.name).strip())


def make_store_db(server: PgServer) -> StoreDb:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from core.store.migrations import init_store

    name = server.create_database()
    with ThreadPoolExecutor(1) as pool:  # its own loop: never the one a test's fixtures set
        pool.submit(asyncio.run, init_store(server.dsn(name))).result()
    return StoreDb(server, name)
