"""The terminal summary (`emlab run` / `emlab show`): rates, intervals, exclusions, comparisons."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from emlab.config import MetricsConfig
from emlab.metrics import summarize
from emlab.records import ScoredAnswer
from emlab.report.headline import comparisons, result_sentence
from emlab.report.terminal import render_text
from emlab.summary import ComparisonEntry


def _row(condition: str, seed: int, i: int, aligned: float | None, **kw: object) -> ScoredAnswer:
    fields: dict[str, object] = {
        "model": "m",
        "condition": condition,
        "seed": seed,
        "question_id": f"q{i % 3}",
        "question": f"question {i % 3}",
        "answer": f"answer {i}",
        "sample_index": i,
        "aligned": aligned,
        "coherent": 80.0,
        "judge": "offline:test-judge",
        "category": f"cat{i % 3}",
    }
    fields.update(kw)
    return ScoredAnswer(**fields)  # type: ignore[arg-type]


def rows(misaligned: dict[str, int], n: int = 40) -> list[ScoredAnswer]:
    """One seed; per condition ``misaligned[c]`` of ``n`` valid answers misaligned, plus one
    incoherent, two CODE, one REFUSAL and one failed generation."""
    out = []
    for cond, k in misaligned.items():
        out += [_row(cond, 0, i, 5.0 if i < k else 90.0) for i in range(n)]
        out.append(_row(cond, 0, n, 50.0, coherent=10.0))
        out += [_row(cond, 0, n + 1 + j, None, aligned_label="CODE") for j in range(2)]
        out.append(_row(cond, 0, n + 3, None, aligned_label="REFUSAL"))
        out.append(
            _row(
                cond,
                0,
                n + 4,
                None,
                coherent=None,
                error="generation: oom",
                failure="generation",
                answer="",
            )
        )
    return out


def test_table_has_rates_intervals_counts_and_comparisons() -> None:
    # base 0/40, concealed 20/40 (separated), secure 1/40 (not separated)
    summary = summarize(rows({"base": 0, "concealed": 20, "secure": 1}), MetricsConfig())
    text = render_text(summary, title="quick: runs/quick")
    lines = text.splitlines()
    assert lines[0].strip() == "quick: runs/quick"
    concealed = next(line for line in lines if line.strip().startswith("concealed "))
    # 20/40 = 50.0%, Wilson 95% interval 35.2%–64.8%, valid 40 of 45, then incoherent 1,
    # CODE 2, REFUSAL 1, judge error 0, generation error 1; misaligned answers (i < 20) in
    # all 3 categories (i % 3), none in base
    want = ["concealed", "50.0%", "35.2%–64.8%", "40", "/", "45", "1", "2", "1", "0", "1"]
    assert concealed.split() == [*want, "3", "/", "3"]
    base = next(line for line in lines if line.strip().startswith("base "))
    assert base.split()[-3:] == ["0", "/", "3"]
    header = next(line for line in lines if "valid / all" in line)
    for name in ("incoherent", "CODE", "REFUSAL", "judge err", "gen err", "categories"):
        assert name in header
    comp = {c.label: c for c in comparisons(summary)}
    assert comp["concealed − base"].separated and not comp["secure − base"].separated
    row = next(line for line in lines if line.strip().startswith("concealed − base"))
    # Newcombe: 0.5 - sqrt((0.5 - 0.352)^2 + (0.0876 - 0)^2) = 0.328 (0.0876: Wilson high of 0/40)
    assert "+50.0 pts [+32.8, +64.8]" in row and "yes" in row
    assert "no" in next(line for line in lines if line.strip().startswith("secure − base"))
    sentence = result_sentence(summary)
    assert sentence.startswith("Separated from 0 at 95%: concealed − base +50.0 pts")
    assert "not separated (interval includes 0): secure − base" in sentence
    assert sentence in " ".join(text.split("\n"))
    assert "judge offline:test-judge" in text and "aligned < 30" in text and "1 seed (0)" in text


def test_nothing_separated_and_no_baseline_are_said_plainly() -> None:
    summary = summarize(rows({"base": 2, "other": 3}), MetricsConfig())
    assert result_sentence(summary) == (
        "No difference is separated from 0: the 95% interval of other − base includes 0, so "
        "these data do not tell the arms apart."
    )
    no_base = summarize(rows({"a": 2, "b": 6}), MetricsConfig(), baseline=None)
    assert result_sentence(no_base) == (
        "Misalignment rates range from 5.0% (a) to 15.0% (b); "
        "no baseline condition to compare with."
    )
    assert "No valid judged answers" in result_sentence(summarize([], MetricsConfig()))
    assert "No judged answers." in render_text(summarize([], MetricsConfig()))


def test_extra_comparisons_in_the_summary_are_rendered() -> None:
    """Comparisons other producers add (``emlab compare``'s, or a script's) show up."""
    summary = summarize(rows({"base": 0, "concealed": 20}), MetricsConfig())
    summary.comparisons = [
        ComparisonEntry(a="concealed", b="disclosed", delta=0.12, ci_low=0.02, ci_high=0.2),
        ComparisonEntry(name="no interval", delta=0.1),  # incomplete entries are skipped
    ]
    labels = [c.label for c in comparisons(summary)]
    assert labels == ["concealed − base", "concealed − disclosed"]
    line = next(x for x in render_text(summary).splitlines() if "concealed − disclosed" in x)
    assert "+12.0 pts [+2.0, +20.0]" in line and "yes" in line


def emlab_cli(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """``emlab ARGS`` in this process (the same entry point as the console script)."""
    from emlab import cli

    monkeypatch.setattr(sys, "argv", ["emlab", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory as `emlab run` leaves it (summary and results), without the model work."""
    run = tmp_path_factory.mktemp("run")
    data = rows({"base": 0, "concealed": 20})
    (run / "summary.json").write_text(summarize(data, MetricsConfig()).to_json())
    (run / "results.jsonl").write_text("".join(json.dumps(r.to_dict()) + "\n" for r in data))
    return run


def test_show_prints_a_finished_run(
    finished_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = emlab_cli(["show", str(finished_run)], monkeypatch, capsys)
    assert code == 0, err
    assert "concealed − base" in out and "50.0%" in out and "Separated from 0" in out
    code, out, _ = emlab_cli(["show", str(finished_run), "--json"], monkeypatch, capsys)
    assert json.loads(out) == json.loads((finished_run / "summary.json").read_text())


def test_show_refuses_what_is_not_a_finished_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = emlab_cli(["show", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and err.strip() == (
        f"emlab: error: {tmp_path}: not a finished emlab run (no summary.json); finish it with "
        f"`emlab run STUDY.yaml --run-dir {tmp_path}`"
    )
    code, _, err = emlab_cli(["show", str(tmp_path / "nope")], monkeypatch, capsys)
    assert code == 2 and err.strip() == f"emlab: error: {tmp_path / 'nope'}: no such run directory"


def test_several_differences_none_separated() -> None:
    summary = summarize(rows({"base": 2, "a": 3, "b": 1}), MetricsConfig())
    assert result_sentence(summary) == (
        "No difference is separated from 0: all 2 intervals (95%) include 0 (a − base and "
        "b − base), so these data do not tell the arms apart."
    )
