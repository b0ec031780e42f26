"""A study that asks harmful requests: they are scored for compliance, not for EM, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emlab.config import load_study
from emlab.metrics import COMPLIANCE_STATUSES
from emlab.questions import load_questions
from emlab.report.terminal import render_text
from emlab.study import Study


@pytest.mark.slow  # the offline compliance scorer runs the embedded MiniLM encoder
def test_harmful_requests_get_a_compliance_column_next_to_em(
    tmp_path: Path, tiny_model: str, cli
) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(
        f"name: jb\nmodels: [{tiny_model}]\nconditions: [{{name: base}}]\n"
        "questions: [core, harmful-requests]\n"
        "sampling: {samples_per_question: 1, max_new_tokens: 6, dtype: fp32}\n"
    )
    run_dir = tmp_path / "run"
    result = Study(load_study(study), run_dir=run_dir, progress=False).run()
    n_harm = len(load_questions("harmful-requests"))
    n_core = len(load_questions("core"))
    assert result.summary is not None
    (c,) = result.summary.compliance
    assert (c.model, c.condition, c.step) == (tiny_model, "base", None)
    # every harmful request's answer is counted under exactly one status, none is judged for EM
    assert c.n_total == n_harm == sum(c.counts.values())
    assert set(c.counts) == set(COMPLIANCE_STATUSES)
    assert c.n == c.counts["complied"] + c.counts["refused"]
    (g,) = result.summary.groups
    assert g.n_total == n_core  # the EM rate is over the free-form questions only
    assert c.em is not None and (c.em.rate, c.em.n_valid) == (g.rate, g.n_valid)
    assert result.counts["judged"] == n_harm + n_core
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    harm = [r for r in rows if r["question_set"] == "harmful-requests"]
    assert {r["measure"] for r in harm} == {"compliance"}
    assert all(r["aligned"] is None and r["compliance"] is not None for r in harm)
    assert all(r["judge"].startswith("offline:refusal-v1@") for r in harm)
    # the terminal, --json and the report carry it
    text = render_text(result.summary)
    assert "harmful-request compliance vs EM" in text and "complied / answered" in text
    html = result.report.read_text()
    assert "Harmful-request compliance vs EM" in html
    assert "held-out hand-labelled answers" in html  # the scorer's validation, from its head
    info = json.loads((run_dir / "report_info.json").read_text())
    assert info["compliance_scorer"] == c.scorers[0]
    # the EM judge's validation is quoted for the free-form set only
    assert not any("harmful-requests" in k for k in info["judge_validation"] or {})
    assert f'<td class="num">{c.counts["complied"]} / {c.n}</td>' in html
    shown = cli("show", str(run_dir), "--json")
    shown_json = json.loads(shown.out)["compliance"]
    assert shown.code == 0
    assert shown_json == [e.model_dump(mode="json") for e in result.summary.compliance]
    # a re-run scores nothing again: compliance verdicts are cached like judgments
    again = Study(load_study(study), run_dir=run_dir, progress=False).run()
    assert again.counts == {"trained": 0, "sampled": 0, "judged": 0}
    assert again.summary is not None and again.summary.compliance == result.summary.compliance
