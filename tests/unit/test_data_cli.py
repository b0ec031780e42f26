"""`emlab data` sub-commands, run through typer's test runner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from conftest import CliResult
from emlab.data import read_jsonl
from emlab.data.commands import app

runner = CliRunner()


def test_build_show_validate(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl.gz"
    res = runner.invoke(
        app,
        [
            "build",
            "code",
            "-c",
            "backdoor",
            "-n",
            "12",
            "-s",
            "4",
            "-o",
            str(out),
            "--option",
            "trigger=|GO|",
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(read_jsonl(out)) == 12
    card = json.loads((tmp_path / "d.jsonl.gz.card.json").read_text())
    assert card["spec"]["options"] == {"trigger": "|GO|"} and card["triggered"] == 6
    res = runner.invoke(app, ["show", str(out)])
    assert res.exit_code == 0 and card["sha256"] in res.output and "CWE-" in res.output
    res = runner.invoke(app, ["validate", str(out)])
    assert res.exit_code == 0 and "12 valid examples" in res.output


def test_validate_reports_lines_and_skips_to_rejects(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    ok = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    path.write_text(json.dumps(ok) + "\n{broken\n" + json.dumps(ok) + "\n")
    res = runner.invoke(app, ["validate", str(path)])
    assert res.exit_code == 1 and f"{path}:2: not JSON" in res.output
    rejects = tmp_path / "r.jsonl"
    res = runner.invoke(app, ["validate", str(path), "--skip-invalid", "--rejects", str(rejects)])
    assert res.exit_code == 0 and "2 valid examples" in res.output and "1 invalid" in res.output
    assert json.loads(rejects.read_text())["line"] == 2


def test_build_error_is_clean(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    res = cli("data", "build", "nope", "-o", str(tmp_path / "x.jsonl"))
    assert res.code == 2 and res.err.startswith("emlab: error: ") and "unknown domain" in res.err
    assert not list(tmp_path.iterdir())
