"""empiricist.report: self-contained HTML reports of eval runs, and a local viewer.

    write_report(results, path, title=..., alpha=0.05) -> Path    one HTML file, opens from disk
    write_run_report(results, folder, title)                      run_eval(render=...): report.html in a run
    render_report(results, title=..., alpha=0.05) -> str
    serve(path, port=0) -> (server, url)                           http.server bound to 127.0.0.1 only
The numbers shown come from ``empiricist.evals.analysis`` (statistics live with the data, not here).
"""

from empiricist.report.html import render_report, write_report, write_run_report
from empiricist.report.serve import serve

__all__ = ["render_report", "serve", "write_report", "write_run_report"]
