"""Study reports: matplotlib figures and one self-contained HTML page.

``render_report(summary, rows, info, out_dir)`` is the entry point; see :mod:`emlab.report.html`.
"""

from emlab.report.html import build_context, render_html, render_report

__all__ = ["build_context", "render_html", "render_report"]
