"""``empiricist view``: serve a report (or a folder of runs) on 127.0.0.1 only.

Reports open from disk anyway; the server is for remote machines reached through an SSH tunnel. It
binds to the loopback interface so results never become visible to the network by accident, and it
serves only the folder holding the report (``http.server`` refuses paths outside it).
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from empiricist.errors import InputError

HOST = "127.0.0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _target(path: Path) -> tuple[Path, str]:
    """(folder to serve, page within it) for a report file, a run folder or a folder of runs."""
    if path.is_file():
        return path.parent, path.name
    if (path / "report.html").is_file():
        return path, "report.html"
    if path.is_dir():
        return path, ""
    raise InputError("no such report or folder", path=path)


def serve(path: str | Path, port: int = 0, background: bool = True) -> tuple[ThreadingHTTPServer, str]:
    """Start serving; returns the server and the report's URL. ``port=0`` picks a free port.

    ``background=True`` runs the server in a daemon thread (call ``server.shutdown()`` to stop it);
    otherwise the caller runs ``server.serve_forever()``.
    """
    folder, page = _target(Path(path))
    handler = functools.partial(_QuietHandler, directory=str(folder.resolve()))
    server = ThreadingHTTPServer((HOST, port), handler)
    url = f"http://{HOST}:{server.server_address[1]}/{quote(page)}"
    if background:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url
