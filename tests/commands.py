"""`tadamon` one-shot commands run fast: a process forked from a warm parent instead of a new
interpreter that imports everything again.

Starting the console script costs more than most commands do (Python, SQLAlchemy, Alembic,
typer, matplotlib... imported anew each time), and the suite runs it a hundred times. The
parent here (one per pytest worker, started on first use) imports the `tadamon` command line
and what its commands import when they run, then forks a child for each command. The child is
a process of its own, as the console script's is: it takes the command's environment (settings
are read from it as usual), folder, arguments and standard streams, runs `bot.cli.main` as the
console script does, and its exit status and output reach the test as a subprocess's would.
Nothing is shared between two commands: each child starts from the parent's state, which never
runs a command.

Tests that are about the console script itself (its start, imports, signals) run the real one
(`fresh=True`, or `conftest.TADAMON` directly); every command has at least one such test.
When the environment changes how Python itself starts (PYTHON*, locale variables) the command
runs as a real subprocess too.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import io
import json
import locale
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TADAMON = str(Path(sys.executable).with_name("tadamon"))
"""The console script of the installed package."""
WARM = (
    "bot.cli", "bot.cli.admin", "bot.cli.broadcasts", "bot.cli.catalogue", "bot.cli.exports",
    "bot.cli.organizers", "bot.cli.privacy", "bot.cli.serve", "sqlalchemy.exc", "rich.progress",
    "redis.exceptions", "storage.database", "storage.repositories", "storage.catalogue",
    "storage.outbox", "storage.cooperatives", "storage.reports", "storage.registrations",
    "storage.state", "bot.catalogue", "bot.i18n", "bot.report", "bot.posters", "handlers.figures",
    "handlers.organizers",
)
"""Imported by the parent: the command line and what its commands import when they run."""
_INTERPRETER = ("PYTHON", "LANG", "LC_")
"""Variables that shape the interpreter at its start: a command with other values than the
parent's runs as a real subprocess."""
_MESSAGE = 1 << 20


@dataclass
class Done:
    """How one command ended: exit status (negative: the signal that killed it) and output."""

    returncode: int
    stdout: bytes
    stderr: bytes

    def text(self) -> tuple[str, str]:
        """stdout and stderr read as `subprocess.run(..., text=True)` reads them."""
        return _as_text(self.stdout), _as_text(self.stderr)


def _as_text(data: bytes) -> str:
    return io.TextIOWrapper(io.BytesIO(data), encoding=locale.getpreferredencoding(False)).read()


def _interpreter_env(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith(_INTERPRETER)}


class Running:
    """One command started by the warm parent (or as a real subprocess): `wait()` for it."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, fresh: bool,
                 given: bytes) -> None:
        # stdout and stderr: closed by wait()
        self._files = [tempfile.TemporaryFile() for _ in range(2)]  # noqa: SIM115
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: socket.socket | None = None
        self.pid = 0
        with tempfile.TemporaryFile() as stdin:
            stdin.write(given)
            stdin.seek(0)
            parent = None if fresh else _parent(env)
            if parent is None:
                self._process = subprocess.Popen(
                    [TADAMON, *args], env=env, cwd=cwd, stdin=stdin, stdout=self._files[0],
                    stderr=self._files[1])
                self.pid = self._process.pid
                return
            self._connection = parent.start(
                {"args": args, "env": env, "cwd": str(cwd)},
                [stdin.fileno(), *(file.fileno() for file in self._files)])
        self.pid = int(json.loads(self._connection.recv(_MESSAGE))["pid"])

    def wait(self, timeout: float = 120.0) -> Done:
        """The command's end; killed (and TimeoutExpired raised) after `timeout` seconds."""
        try:
            returncode = self._returncode(timeout)
            stdout, stderr = (self._read(file) for file in self._files)
        finally:
            for file in self._files:
                file.close()
            if self._connection is not None:
                self._connection.close()
        return Done(returncode, stdout, stderr)

    def _returncode(self, timeout: float) -> int:
        if self._process is not None:
            try:
                return self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
                raise
        assert self._connection is not None
        self._connection.settimeout(timeout)
        try:
            return int(json.loads(self._connection.recv(_MESSAGE))["returncode"])
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, 9)
            raise subprocess.TimeoutExpired([TADAMON], timeout) from None

    @staticmethod
    def _read(file: Any) -> bytes:
        file.seek(0)
        data: bytes = file.read()
        return data


def start(*args: str | Path, env: dict[str, str], cwd: Path, fresh: bool = False,
          given: bytes = b"") -> Running:
    """Start `tadamon ARGS` in `cwd` with exactly `env` as its environment and `given` on
    its standard input."""
    return Running([str(arg) for arg in args], env, cwd, fresh, given)


def run(*args: str | Path, env: dict[str, str], cwd: Path, fresh: bool = False,
        given: bytes = b"", timeout: float = 120.0) -> Done:
    """Run `tadamon ARGS` to its end."""
    return start(*args, env=env, cwd=cwd, fresh=fresh, given=given).wait(timeout)


# --------------------------------------------------------------------------- the test's side


class _Parent:
    """The warm parent process of this pytest worker."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="tadamon-warm-")
        self.address = os.path.join(self.folder, "socket")
        self.env = dict(os.environ)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.commands", self.address], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1], env=self.env)
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if ready.strip() != b"ready":
            self.process.kill()
            raise RuntimeError(f"the warm tadamon parent did not start: {ready!r}")

    def start(self, request: dict[str, Any], fds: list[int]) -> socket.socket:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            connection.connect(self.address)
            socket.send_fds(connection, [json.dumps(request).encode()], fds)
        except BaseException:
            connection.close()
            raise
        return connection

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()  # the parent ends at the end of its standard input
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            os.unlink(self.address)
            os.rmdir(self.folder)


_PARENT: _Parent | None = None
_PARENT_LOCK = threading.Lock()


def _parent(env: dict[str, str]) -> _Parent | None:
    """The warm parent, started on first use; None when `env` needs an interpreter of its own."""
    global _PARENT
    with _PARENT_LOCK:
        if _PARENT is None:
            _PARENT = _Parent()
            atexit.register(_PARENT.stop)
        parent = _PARENT
    return parent if _interpreter_env(env) == _interpreter_env(parent.env) else None


# --------------------------------------------------------------------------- the parent's side


def _serve(address: str) -> tuple[dict[str, Any], list[int]]:
    """Fork a child per request; returns only in a child, with its request and streams."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address)
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stop")
    held: set[Any] = set()  # connections and pidfds: closed in a child
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            if key.data == "accept":
                connection, _ = listener.accept()
                held.add(connection)
                selector.register(connection, selectors.EVENT_READ, "request")
            elif key.data == "stop":
                if not os.read(sys.stdin.fileno(), 1024):
                    raise SystemExit(0)
            elif key.data == "request":
                connection = key.fileobj  # type: ignore[assignment]
                message, fds, _, _ = socket.recv_fds(connection, _MESSAGE, 3)
                selector.unregister(connection)
                if not message or len(fds) != 3:
                    held.discard(connection)
                    connection.close()
                    for fd in fds:
                        os.close(fd)
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    listener.close()
                    for item in held:
                        if isinstance(item, int):
                            os.close(item)
                        else:
                            item.close()
                    return json.loads(message), fds
                for fd in fds:
                    os.close(fd)
                connection.send(json.dumps({"pid": pid}).encode())
                pidfd = os.pidfd_open(pid)
                held.add(pidfd)
                selector.register(pidfd, selectors.EVENT_READ, ("exit", pid, connection))
            else:
                _, pid, connection = key.data
                selector.unregister(key.fileobj)
                held.discard(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):
                    connection.send(json.dumps(
                        {"returncode": os.waitstatus_to_exitcode(status)}).encode())
                held.discard(connection)
                connection.close()


def _become(request: dict[str, Any], fds: list[int]) -> None:
    """In the child: the command's streams, folder, environment and arguments."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [TADAMON, *request["args"]]
    sys.path[0] = os.path.dirname(TADAMON)  # as for the console script


def _exit_status(exc: SystemExit) -> int:
    """The status the interpreter exits with on `exc`, printing what it would print."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _command() -> int:
    """`bot.cli.main()` as the console script runs it; its exit status."""
    from bot.cli import main

    try:
        main()
    except SystemExit as exc:
        return _exit_status(exc)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        return 1
    return 0


def _exit(status: int) -> None:
    """End as the interpreter ends (threads joined, exit functions run, garbage collected,
    streams flushed) but without tearing down the modules the parent imported: the child
    would copy every page of the parent's memory to do it."""
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    gc.collect()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def _main(address: str) -> None:
    for name in WARM:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.collect()
    gc.freeze()  # a child's collections leave the parent's objects (and pages) alone
    request, fds = _serve(address)
    _become(request, fds)
    _exit(_command())


if __name__ == "__main__":
    _main(sys.argv[1])
