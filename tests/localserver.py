"""A server process for the tests: started on a free 127.0.0.1 port, waited for, stopped."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def listening(command: Callable[[int], Sequence[str]], port: int | None = None) -> Iterator[int]:
    """Run ``command(port)`` until the block ends; yields the port once the process accepts
    connections on it (at most 60 s; a process that exits first fails with its stderr)."""
    port = free_port() if port is None else port
    with tempfile.TemporaryFile("w+") as log:  # not a pipe: a chatty server never blocks
        proc = subprocess.Popen(list(command(port)), stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        log.seek(0)
                        raise AssertionError(f"the server exited: {log.read()[-2000:]}") from None
                    if time.monotonic() > deadline:
                        raise AssertionError(f"nothing listens on port {port} after 60 s") from None
                    time.sleep(0.2)
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=10)
