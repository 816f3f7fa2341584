"""``empiricist view``: serve a report (or a folder of runs) on 127.0.0.1 only.

Reports open from disk anyway; the server is for remote machines reached through an SSH tunnel. It
binds to the loopback interface so results never become visible to the network by accident, and it
serves only regular files inside the folder holding the report: a symlink (or any path that resolves
outside the folder) is refused rather than followed, and directories are not listed unless asked
(``listing=True``, ``empiricist view --list``).
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
    """``http.server``'s handler limited to regular, non-symlinked files under its folder."""

    listing = False

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):
        root = Path(self.directory).resolve()
        local = Path(self.translate_path(self.path))
        if not _inside(local, root):
            self.send_error(404, "not found")
            return None
        if local.is_dir():
            index = local / "index.html"
            if not (self.listing or (index.is_file() and _inside(index, root))):
                self.send_error(404, "not found (no directory listings; `empiricist view --list` to allow)")
                return None
        return super().send_head()


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is a regular file or folder under ``root`` reached without any symlink."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return False
    here = root
    for part in rel.parts:
        here = here / part
        if here.is_symlink():
            return False
    return path.exists() and (path.is_file() or path.is_dir())


def _target(path: Path) -> tuple[Path, str]:
    """(folder to serve, page within it) for a report file, a run folder or a folder of runs."""
    if path.is_file():
        return path.parent, path.name
    if (path / "report.html").is_file():
        return path, "report.html"
    if path.is_dir():
        return path, ""
    raise InputError("no such report or folder", path=path)


def serve(path: str | Path, port: int = 0, background: bool = True,
          listing: bool = False) -> tuple[ThreadingHTTPServer, str]:
    """Start serving; returns the server and the report's URL. ``port=0`` picks a free port.

    ``background=True`` runs the server in a daemon thread (call ``server.shutdown()`` to stop it);
    otherwise the caller runs ``server.serve_forever()``. ``listing`` allows directory listings.
    """
    folder, page = _target(Path(path))
    if not page and not listing and not (folder / "index.html").is_file():
        raise InputError("is a folder without report.html; pass --list to browse its files", path=path)
    handler_cls = type("_Handler", (_QuietHandler,), {"listing": listing})
    handler = functools.partial(handler_cls, directory=str(folder.resolve()))
    server = ThreadingHTTPServer((HOST, port), handler)
    url = f"http://{HOST}:{server.server_address[1]}/{quote(page)}"
    if background:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url
