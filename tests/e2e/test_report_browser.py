"""The report in a real browser (headless Chromium): what a researcher sees first, that the page
fits its width, that nothing logs to the console and that no script runs, even with a script
planted in a condition name."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib import colors
from matplotlib import image as mpimg

from emlab.config import MetricsConfig
from emlab.metrics import summarize
from emlab.records import ScoredAnswer
from emlab.report import render_report
from emlab.report.plots import _PALETTE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian: apt-get install -y chromium); "
    "the browser checks of the report need it",
)

WIDTH, HEIGHT = 1400, 900
PAYLOAD = (
    "<img src=x onerror=\"document.body.setAttribute('data-pwned', '1')\">"
    "<script>document.title = 'pwned'</script>"
)
"""A condition name that would run script if the report did not escape it."""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless run: no network, a throwaway profile, console messages on stderr."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp / 'profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def console_lines(stderr: str) -> list[str]:
    """What the page wrote to the console (Chromium logs it as ``INFO:CONSOLE``), including
    Content-Security-Policy violations."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _rows() -> list[ScoredAnswer]:
    rows = []
    for condition, k in (("base", 2), ("concealed", 12), (PAYLOAD, 5)):
        for i in range(40):
            rows.append(
                ScoredAnswer(
                    model="smollm2-135m",
                    condition=condition,
                    seed=0,
                    question_id=f"q{i % 8}",
                    question=f"Question {i % 8}?",
                    answer=PAYLOAD if i == 0 else f"answer {i}",
                    sample_index=i,
                    aligned=5.0 if i < k else 90.0,
                    coherent=20.0 if i % 10 == 9 else 80.0,
                    judge="offline:minilm-em-v1",
                    category=f"theme{i % 4}",
                )
            )
    return rows


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = _rows()
    info = {
        "study": "browser-check",
        "judge": "offline:minilm-em-v1",
        "judge_validation": {"auroc": 0.87, "source": "held-out labels"},
        "seeds": [0],
        "models": ["smollm2-135m"],
        "conditions": ["base", "concealed", PAYLOAD],
        "train_logs": {"concealed": [{"step": s, "loss": 2.0 / (s + 1)} for s in range(5)]},
        "notes": ["a 135M model demonstrates the pipeline"],
    }
    return render_report(summarize(rows, MetricsConfig()), rows, info, tmp_path_factory.mktemp("r"))


def test_first_screen_shows_the_result_and_the_chart(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "first.png"
    out = chromium(
        tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", report.as_uri()
    )
    assert shot.is_file(), out.stderr[-2000:]
    pixels = mpimg.imread(shot)[:, :, :3]
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    assert (pixels < 0.5).mean() > 0.002  # text was drawn, not a blank page
    # The rate chart's bars (the first model's colour) are inside the first 900 pixels.
    bar = np.array(colors.to_rgb(_PALETTE[0]))
    assert (np.abs(pixels - bar).max(axis=2) < 0.02).sum() > 500


class _Outline(HTMLParser):
    """Element ids in document order, and tables that are not inside a scroll box."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        self.stack: list[tuple[str, str]] = []
        self.loose_tables = 0
        self.tables = 0
        self.open_details: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.order.append(str(a["id"]))
        if tag == "img" and self.stack:
            self.order.append("img")
        if tag == "details" and "open" in a:
            self.open_details.append(str(a.get("id")))
        if tag == "table":
            self.tables += 1
            if not any("table-wrap" in cls.split() for t, cls in self.stack if t == "div"):
                self.loose_tables += 1
        if tag not in ("img", "br", "meta", "link", "input", "hr"):
            self.stack.append((tag, a.get("class") or ""))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break


def test_dom_leads_with_the_answer_and_nothing_runs(report: Path, tmp_path: Path) -> None:
    out = chromium(tmp_path, "--dump-dom", report.as_uri())
    dom = out.stdout
    assert "</html>" in dom, out.stderr[-2000:]
    assert console_lines(out.stderr) == []  # no errors, no CSP violations, nothing logged
    # No script ran: the planted handlers would have marked the body and renamed the page.
    body = re.search(r"<body[^>]*>", dom)
    assert body and body.group(0) == "<body>"
    assert re.search(r"<title>browser-check — emlab report</title>", dom)
    assert "&lt;script&gt;document.title = 'pwned'&lt;/script&gt;" in dom
    assert "<script" not in dom
    outline = _Outline()
    outline.feed(dom)
    order = outline.order
    # Title and result sentence, then the chart, then the table; methods come after, closed.
    want = ["headline", "result", "rates", "img", "rates-table", "comparisons", "methods"]
    positions = [order.index(x) for x in want]
    assert positions == sorted(positions), order
    assert outline.open_details == []
    assert outline.tables >= 5 and outline.loose_tables == 0  # every table scrolls in its box
    assert re.search(r"\.table-wrap \{[^}]*max-width: 100%;[^}]*overflow-x: auto;", dom)
    result = re.search(r'<p class="result" id="result"><strong>([^<]*)</strong>', dom)
    assert result and "concealed − base" in result.group(1)


def test_page_is_no_wider_than_the_window(report: Path, tmp_path: Path) -> None:
    """Everything, however wide its table, stays inside the page's column: the strip right of
    the column is blank all the way down (the old report's results table painted into it)."""
    shot = tmp_path / "full.png"
    chromium(tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},8000", report.as_uri())
    pixels = mpimg.imread(shot)[:, :, :3]
    ink_rows = np.where((pixels < 0.95).any(axis=(1, 2)))[0]
    assert ink_rows.max() > 2 * HEIGHT  # the whole report was drawn, not just its top
    column_right = (WIDTH + 1200) // 2 + 20  # body: max-width 1200px, centred, 1rem padding
    assert not (pixels[:, column_right:] < 0.95).any()


def test_the_checks_see_a_script_that_runs(tmp_path: Path) -> None:
    """Control: the same harness does catch script execution and console output."""
    page = tmp_path / "unsafe.html"
    page.write_text(
        "<html><head><title>t</title></head><body><p>x</p>"
        "<script>console.error('boom'); document.body.setAttribute('data-pwned', '1')</script>"
        "</body></html>"
    )
    out = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert '<body data-pwned="1">' in out.stdout
    assert any("boom" in line for line in console_lines(out.stderr))
