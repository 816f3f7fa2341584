"""empiricist.report: self-contained HTML reports of eval runs, and a local viewer.

    write_report(results, path, title=..., alpha=0.05) -> Path    one HTML file, opens from disk
    write_run_report(results, folder, title)                      run_eval(render=...): report.html in a run
    render_report(results, title=..., alpha=0.05) -> str
    serve(path, port=0) -> (server, url)                           http.server bound to 127.0.0.1 only
The numbers shown come from ``empiricist.evals.analysis`` (statistics live with the data, not here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from empiricist._lazy import lazy_exports
from empiricist.report.serve import serve  # eager: a function named like its module

if TYPE_CHECKING:
    from empiricist.report.html import render_report, write_report, write_run_report

_EXPORTS = {
    "render_report": "html",
    "write_report": "html",
    "write_run_report": "html",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["render_report", "serve", "write_report", "write_run_report"]
