"""Start the dashboard: check the store, bind the address, run uvicorn until interrupted.

The store is opened and read once before anything listens, so a missing, non-file,
corrupt or foreign store is refused (StoreError, exit code 2) with nothing served.
The address is bound here, so a port in use is a clear error too, and port 0 takes a
free port (the URL printed names it).

The web stack (Starlette, uvicorn, Plotly) is the `serve` extra: this module does not
import it, and loads the application module by name once the extra is known to be
installed, so `nasmix` without the extra says what to install instead of failing to
start.

Example:
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import ipaddress
import os
import socket
import sys
from collections.abc import Callable

from nasmix.errors import NasmixError
from nasmix.serve.live import INTERVAL_S, LiveStudy

EXTRA = ("starlette", "uvicorn", "plotly")
LOOPBACK_HOSTS = (
    "127.0.0.1",
    "localhost",
    "::1",
)  # the Host names a loopback-bound server answers to


def missing_packages() -> list[str]:
    """The packages of the `serve` extra that are not installed."""
    return [name for name in EXTRA if importlib.util.find_spec(name) is None]


def _addresses(host: str, port: int) -> list[tuple]:
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        raise NasmixError(f"--host {host!r} is not an address this machine can bind: {err}") from None


def is_loopback(host: str) -> bool:
    """Whether every address the host name resolves to is a loopback address (127.0.0.0/8, ::1)."""
    try:
        found = _addresses(host, 0)
    except NasmixError:
        return False
    return bool(found) and all(ipaddress.ip_address(a[4][0].split("%")[0]).is_loopback for a in found)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one).

    Raises:
        NasmixError: the port is taken, not allowed, or the host is not an address of this machine.
    """
    if not 0 <= port <= 65535:
        raise NasmixError(f"--port {port} is not a port number (0 to 65535; 0 picks a free one)")
    family, kind, proto, _, address = _addresses(host, port)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        taken = (
            " (another program uses it: choose another with --port)" if err.errno == errno.EADDRINUSE else ""
        )
        raise NasmixError(f"cannot listen on {host} port {port}: {err.strerror or err}{taken}") from None
    sock.set_inheritable(False)
    return sock


def url_of(sock: socket.socket) -> str:
    """The http URL of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def exposure_warning(host: str, port: int) -> str:
    """What binding a non-loopback address exposes, and the tunnel to use instead."""
    return (
        f"nasmix serve: listening on {host} port {port}, which is not a loopback address: anyone who can "
        "reach this machine on that port can read the whole study (cell names, settings, results, arch "
        "strings, failure reasons and tracebacks), read-only, with no authentication and no encryption. "
        "To view it from another machine, keep the default --host 127.0.0.1 and tunnel instead: "
        f"ssh -N -L {port}:127.0.0.1:{port} USER@THIS_MACHINE, then open http://127.0.0.1:{port}/ there."
    )


def serve(
    db: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8050,
    interval: float = INTERVAL_S,
    say: Callable[[str], None] | None = None,
) -> int:
    """Serve the dashboard of a store until interrupted.

    Args:
        db: the study's store.
        host: the address to bind (127.0.0.1: this machine only).
        port: the port (0: a free one).
        interval: seconds between reads of the store.
        say: where the URL goes (default: standard output, flushed).

    Returns:
        The exit code (0).

    Raises:
        NasmixError: the extra is missing, the store is refused, or the address cannot be bound.
    """
    say = say or (lambda text: print(text, flush=True))
    missing = missing_packages()
    if missing:
        raise NasmixError(f"nasmix serve needs {', '.join(missing)}: pip install 'nasmix[serve]'")
    if interval <= 0:
        raise NasmixError(f"--interval {interval} must be a positive number of seconds")
    live = LiveStudy(db, interval=interval)
    live.start()
    try:
        loopback = is_loopback(host)
        sock = bind(host, port)
        app = importlib.import_module("nasmix.serve.app").create_app(
            live, LOOPBACK_HOSTS if loopback else None, str(live.path)
        )
        uvicorn = importlib.import_module("uvicorn")
        quiet = {"log_level": "warning", "access_log": False, "lifespan": "off"}
        config = uvicorn.Config(app, timeout_graceful_shutdown=1, **quiet)
        cells = len(live.snapshot().records)
        say(f"nasmix serve: {url_of(sock)}  ({live.path}, {cells} cells, read-only; Ctrl+C stops)")
        if not loopback:
            print(
                exposure_warning(host, sock.getsockname()[1]),
                file=sys.stderr,
                flush=True,
            )
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            sock.close()
    finally:
        live.stop()
    return 0
