"""Throwaway real Redis and PostgreSQL servers for tests and benchmarks.

Each ``start_*`` function launches a private server bound to 127.0.0.1 on a free port, with
all of its state in a fresh temporary folder, waits until it answers, and returns a
:class:`RunningServer`.  ``RunningServer.stop()`` shuts the server down and removes the
folder; ``halt()`` and ``restart()`` stop it and start it again on the same port and data, as
an operator restarting it would.  Servers that are still running when the interpreter exits are
stopped by an ``atexit`` hook, so an aborted test run does not leave processes behind.

This module has no pytest dependency; the binaries are expected to be installed already
(see ``tests/ensure-servers.sh``).
"""

from __future__ import annotations

import atexit
import functools
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RunningServer", "free_port", "start_postgres", "start_redis"]

HOST = "127.0.0.1"
REDIS_START_TIMEOUT = 10.0
POSTGRES_START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it
_PG_USER = "tadamon"
_PG_DATABASE = "tadamon"
_PG_SYSTEM_USER = "postgres"
# sockaddr_un.sun_path is 108 bytes; PostgreSQL appends "/.s.PGSQL.NNNNN" (+ ".lock").
_MAX_SOCKET_DIR_LEN = 80


@dataclass(eq=False)  # compared and hashed by identity
class RunningServer:
    """A server process started by this module; call :meth:`stop` when done."""

    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    stop_signal: int = signal.SIGTERM
    extra_dirs: list[Path] = field(default_factory=list)
    log_path: Path | None = None
    launch: Callable[[], subprocess.Popen[bytes]] | None = None
    """Starts the server again on the same port and data (see :meth:`restart`)."""
    ready: Callable[[], bool] | None = None

    @property
    def port(self) -> int:
        match = re.search(r":(\d+)/", self.url)
        if match is None:  # pragma: no cover - urls are built by this module
            raise ValueError(f"no port in {self.url!r}")
        return int(match.group(1))

    def stop(self) -> None:
        """Terminate the server (kill it after 10 s) and remove its folders. Idempotent."""
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        if self.process.poll() is None:
            try:
                self.process.send_signal(self.stop_signal)
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            except ProcessLookupError:  # pragma: no cover - exited in between
                self.process.wait()
        for folder in (self.workdir, *self.extra_dirs):
            shutil.rmtree(folder, ignore_errors=True)

    def log(self) -> str:
        """The server's output so far (empty if there is none)."""
        return _read_text(self.log_path)

    def halt(self) -> None:
        """Stop the process as :meth:`stop` does, keeping its port and data for :meth:`restart`."""
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self, timeout: float = POSTGRES_START_TIMEOUT) -> None:
        """Stop the server (unless :meth:`halt` did) and start it again on the same port and
        data, as an operator restarting it would; returns once it answers."""
        if self.launch is None or self.ready is None:
            raise RuntimeError(f"{self.url} cannot be restarted")
        self.halt()
        self.process = self.launch()
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.url} did not come back:\n{self.log()}")
            time.sleep(0.05)


_RUNNING: set[RunningServer] = set()
_RUNNING_LOCK = threading.Lock()


def _stop_all() -> None:
    with _RUNNING_LOCK:
        servers = list(_RUNNING)
    for server in servers:
        server.stop()


atexit.register(_stop_all)


def _register(server: RunningServer) -> RunningServer:
    with _RUNNING_LOCK:
        _RUNNING.add(server)
    return server


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _read_text(path: Path | None, limit: int = 20_000) -> str:
    if path is None:
        return ""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", errors="replace")


def _make_workdir(base: Path | None, prefix: str) -> Path:
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


def _which(name: str, extra_dirs: Sequence[str | Path] = ()) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in extra_dirs:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


# ----------------------------------------------------------------------------- redis


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith(b"+PONG")


def start_redis(base: Path | None = None, *, appendonly: bool = False) -> RunningServer:
    """Start a private ``redis-server`` and wait until it answers PING. No persistence, unless
    ``appendonly``: then an append-only file keeps the data across a restart, as a production
    Redis keeps it."""
    binary = _which("redis-server", ("/usr/bin", "/usr/sbin", "/usr/local/bin"))
    if binary is None:
        raise RuntimeError(
            "redis-server not found on PATH, /usr/bin or /usr/sbin; run tests/ensure-servers.sh"
        )
    failures: list[str] = []
    for _attempt in range(_START_ATTEMPTS):
        workdir = _make_workdir(base, "tadamon-redis-")
        log_path = workdir / "redis.log"
        port = free_port()
        command = [
            binary,
            "--bind", HOST,
            "--port", str(port),
            "--save", "",
            "--appendonly", "yes" if appendonly else "no",
            "--dir", str(workdir),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", "",
        ]  # fmt: skip

        def launch(command: list[str] = command, workdir: Path = workdir,
                   log_path: Path = log_path) -> subprocess.Popen[bytes]:
            with log_path.open("ab") as log_file:
                return subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                )

        process = launch()
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if _redis_ping(port):
                return _register(
                    RunningServer(
                        url=f"redis://{HOST}:{port}/0",
                        process=process,
                        workdir=workdir,
                        log_path=log_path,
                        launch=launch,
                        ready=functools.partial(_redis_ping, port),
                    )
                )
            time.sleep(0.05)
        exited = process.poll() is not None
        _terminate(process)
        output = _read_text(log_path)
        shutil.rmtree(workdir, ignore_errors=True)
        failures.append(
            f"port {port}: "
            + (f"exited with code {process.returncode}" if exited else "no PONG within 10 s")
            + f"\n--- redis-server output ---\n{output}"
        )
        if not exited or "Address already in use" not in output:
            break
    raise RuntimeError("could not start redis-server:\n" + "\n".join(failures))


# -------------------------------------------------------------------------- postgres


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,)
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def _postgres_bin_dir() -> Path:
    """Folder holding ``postgres`` and ``initdb`` (and normally psql, createdb, pg_isready)."""
    on_path = shutil.which("postgres")
    initdb_on_path = shutil.which("initdb")
    if on_path and initdb_on_path:
        # Debian-style /usr/local/bin symlinks point into the real bin folder, where the
        # client tools of the same version live (the /usr/bin ones are pg_wrapper scripts).
        return Path(on_path).resolve().parent
    candidates = [
        folder
        for folder in Path("/usr/lib/postgresql").glob("*/bin")
        if (folder / "postgres").is_file() and (folder / "initdb").is_file()
    ]
    if candidates:
        return max(candidates, key=_version_key)
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError(
        "PostgreSQL server binaries (postgres, initdb) not found on PATH or under "
        "/usr/lib/postgresql/*/bin; run tests/ensure-servers.sh"
    )


def _pg_tool(bin_dir: Path, name: str) -> str | None:
    candidate = bin_dir / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _postgres_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(_PG_SYSTEM_USER)
    except KeyError:
        raise RuntimeError(
            "running as root, but there is no 'postgres' system user to run PostgreSQL as "
            "(PostgreSQL refuses to run as root); install the postgresql package or run the "
            "tests as a normal user"
        ) from None


def _as_postgres_prefix() -> list[str]:
    """Command prefix that runs a one-shot command as the postgres system user."""
    runuser = _which("runuser", ("/usr/sbin", "/sbin"))
    if runuser:
        return [runuser, "-u", _PG_SYSTEM_USER, "--"]
    setpriv = _which("setpriv", ("/usr/bin", "/bin"))
    if setpriv:
        return [
            setpriv,
            f"--reuid={_PG_SYSTEM_USER}",
            f"--regid={_PG_SYSTEM_USER}",
            "--init-groups",
            "--",
        ]
    su = _which("su", ("/bin", "/usr/bin"))
    if su:
        # su hands the arguments after the user name to the shell: sh -c CMD ARG0 ARG1...
        return [su, "-s", "/bin/sh", "-c", 'exec "$0" "$@"', "--", _PG_SYSTEM_USER]
    raise RuntimeError("running as root, but none of runuser, setpriv or su is available")


def _accessible_by(path: Path, account: pwd.struct_passwd) -> bool:
    """Whether ``account`` can traverse every ancestor of ``path`` (checked from mode bits)."""
    for folder in path.parents:
        try:
            info = folder.stat()
        except OSError:
            return False
        if info.st_uid == account.pw_uid:
            needed = stat.S_IXUSR
        elif info.st_gid == account.pw_gid:
            needed = stat.S_IXGRP
        else:
            needed = stat.S_IXOTH
        if not info.st_mode & needed:
            return False
    return True


def _chown_tree(path: Path, account: pwd.struct_passwd) -> None:
    os.chown(path, account.pw_uid, account.pw_gid)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), account.pw_uid, account.pw_gid)


def _run(
    command: list[str], *, what: str, cwd: Path, env: dict[str, str], timeout: float = 120.0
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.output or b"").decode("utf-8", errors="replace")
        raise RuntimeError(f"{what} timed out after {timeout} s: {command}\n{output}") from None


def _client_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "2"
    env["LC_ALL"] = "C"
    return env


def _initdb(
    bin_dir: Path, data_dir: Path, workdir: Path, prefix: list[str], env: dict[str, str]
) -> None:
    initdb = _pg_tool(bin_dir, "initdb")
    if initdb is None:  # pragma: no cover - _postgres_bin_dir checked it
        raise RuntimeError(f"initdb not found in {bin_dir}")
    outputs: list[str] = []
    for locale in ("C.UTF-8", "C"):
        shutil.rmtree(data_dir, ignore_errors=True)
        command = [
            *prefix,
            initdb,
            "-D", str(data_dir),
            "-U", _PG_USER,
            "--auth=trust",
            "-E", "UTF8",
            f"--locale={locale}",
            "--no-sync",
        ]  # fmt: skip
        result = _run(command, what="initdb", cwd=workdir, env=env)
        output = result.stdout.decode("utf-8", errors="replace")
        if result.returncode == 0:
            return
        outputs.append(f"$ {' '.join(command)}\n(exit code {result.returncode})\n{output}")
    raise RuntimeError("initdb failed:\n" + "\n".join(outputs))


def _pg_ready(bin_dir: Path, port: int, env: dict[str, str], workdir: Path) -> bool:
    pg_isready = _pg_tool(bin_dir, "pg_isready")
    if pg_isready is not None:
        command = [pg_isready, "-q", "-h", HOST, "-p", str(port), "-U", _PG_USER, "-d", "postgres"]
        result = _run(command, what="pg_isready", cwd=workdir, env=env, timeout=10.0)
        return result.returncode == 0
    # No pg_isready: a TCP connect only proves the postmaster listens, not that recovery is
    # over, so the caller retries database creation for a while as well.
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def _create_database(
    bin_dir: Path, port: int, env: dict[str, str], workdir: Path, deadline: float
) -> None:
    createdb = _pg_tool(bin_dir, "createdb")
    psql = _pg_tool(bin_dir, "psql")
    connection = ["-h", HOST, "-p", str(port), "-U", _PG_USER]
    if createdb is not None:
        command = [createdb, *connection, _PG_DATABASE]
    elif psql is not None:
        command = [
            psql, *connection, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q",
            "-c", f'CREATE DATABASE "{_PG_DATABASE}"',
        ]  # fmt: skip
    else:
        raise RuntimeError(f"neither createdb nor psql found in {bin_dir} or on PATH")
    while True:
        result = _run(command, what="createdb", cwd=workdir, env=env, timeout=30.0)
        if result.returncode == 0:
            return
        output = result.stdout.decode("utf-8", errors="replace")
        transient = "starting up" in output or "could not connect" in output
        if not transient or time.monotonic() > deadline:
            raise RuntimeError(
                f"creating database {_PG_DATABASE!r} failed: {' '.join(command)}\n{output}"
            )
        time.sleep(0.2)


def _postgres_workdir(base: Path | None, account: pwd.struct_passwd | None) -> Path:
    workdir = _make_workdir(base, "tadamon-pg-")
    if account is None or _accessible_by(workdir, account):
        return workdir
    # e.g. pytest's tmp_path lives under a 0700 folder of root's that "postgres" cannot
    # enter; use the system temp folder instead (it is sticky and world-traversable).
    shutil.rmtree(workdir, ignore_errors=True)
    workdir = _make_workdir(None, "tadamon-pg-")
    if not _accessible_by(workdir, account):
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError(
            f"the postgres system user cannot reach {workdir.parent}; set TMPDIR to a "
            "world-traversable folder"
        )
    return workdir


def start_postgres(base: Path | None = None) -> RunningServer:
    """Start a private PostgreSQL with a ``tadamon`` superuser (trust auth) and database.

    When running as root, the server runs as the ``postgres`` system user, and its folder
    may be put in the system temp folder if that user cannot reach ``base``.
    """
    bin_dir = _postgres_bin_dir()
    postgres = _pg_tool(bin_dir, "postgres")
    if postgres is None:  # pragma: no cover - _postgres_bin_dir checked it
        raise RuntimeError(f"postgres not found in {bin_dir}")
    account = _postgres_account() if _running_as_root() else None
    prefix = _as_postgres_prefix() if account is not None else []
    env = _client_env()

    failures: list[str] = []
    for _attempt in range(_START_ATTEMPTS):
        workdir = _postgres_workdir(base, account)
        extra_dirs: list[Path] = []
        data_dir = workdir / "data"
        socket_dir = workdir / "sock"
        if len(str(socket_dir)) > _MAX_SOCKET_DIR_LEN:
            socket_dir = Path(tempfile.mkdtemp(prefix="tdpg-"))
            extra_dirs.append(socket_dir)
        socket_dir.mkdir(exist_ok=True)
        log_path = workdir / "postgres.log"
        log_path.touch()
        try:
            if account is not None:
                for folder in (workdir, *extra_dirs):
                    _chown_tree(folder, account)
            _initdb(bin_dir, data_dir, workdir, prefix, env)
        except BaseException:
            for folder in (workdir, *extra_dirs):
                shutil.rmtree(folder, ignore_errors=True)
            raise

        port = free_port()
        command = [
            postgres,
            "-D", str(data_dir),
            "-p", str(port),
            "-k", str(socket_dir),
            "-h", HOST,
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]  # fmt: skip
        # The server is started with setuid done by subprocess itself (not via runuser) so
        # that ``process`` *is* the postmaster: runuser would SIGKILL it 2 s after
        # forwarding SIGTERM, and a kill of runuser would orphan it.
        as_user: dict[str, Any] = {}
        if account is not None:
            as_user = {
                "user": account.pw_uid,
                "group": account.pw_gid,
                "extra_groups": [],
            }

        def launch(command: list[str] = command, workdir: Path = workdir,
                   log_path: Path = log_path, as_user: dict[str, Any] = as_user
                   ) -> subprocess.Popen[bytes]:
            with log_path.open("ab") as log_file:
                return subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    env={**env, "LC_ALL": "C", "HOME": str(workdir)},
                    **as_user,
                )

        process = launch()
        server = RunningServer(
            url=f"postgresql+asyncpg://{_PG_USER}@{HOST}:{port}/{_PG_DATABASE}",
            process=process,
            workdir=workdir,
            # SIGINT = "fast shutdown" (SIGTERM waits for clients to disconnect).
            stop_signal=signal.SIGINT,
            extra_dirs=extra_dirs,
            log_path=log_path,
            launch=launch,
            ready=functools.partial(_pg_ready, bin_dir, port, env, workdir),
        )
        deadline = time.monotonic() + POSTGRES_START_TIMEOUT
        ready = False
        try:
            while time.monotonic() < deadline and process.poll() is None:
                if _pg_ready(bin_dir, port, env, workdir):
                    ready = True
                    break
                time.sleep(0.1)
            if ready:
                _create_database(bin_dir, port, env, workdir, deadline)
                return _register(server)
        except BaseException:
            server.stop()
            raise
        exited = process.poll() is not None
        output = server.log()
        server.stop()
        failures.append(
            f"port {port}: "
            + (
                f"postgres exited with code {process.returncode}"
                if exited
                else f"not accepting connections within {POSTGRES_START_TIMEOUT:.0f} s"
            )
            + f"\n--- postgres log ---\n{output}"
        )
        if not exited or "already in use" not in output:
            break
    raise RuntimeError("could not start PostgreSQL:\n" + "\n".join(failures))
