"""Pre-flight: everything about a study that can be checked before the first model step.

A study validated by its schema can still name a model that is not on this machine, a question
file that does not exist, a domain or condition emlab does not know, or a combination no backend
can run. Found later, each costs the work done before it (a fine-tune can take hours), and the
error would not point into the study file. So ``emlab run`` checks them all first and reports
each as ``study.yaml:LINE: field: reason``, and nothing is written before they pass.

Like ``study.py``, this module composes stages (it asks each whether it can do its part); the
checks per backend are registries, so a new backend adds its own.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from emlab import data, study_contexts
from emlab.arms import question_set, resolve_path
from emlab.backends import SAMPLING_BACKENDS
from emlab.config import ConditionConfig, JudgeConfig, StudyConfig, StudyFileError, yaml_line
from emlab.errors import EmlabError
from emlab.models import load_model, resolve_ref
from emlab.store import check_output

if TYPE_CHECKING:  # the interp stage loads torch: imported where a direction is checked
    from emlab.interp.directions import Direction

Problem = tuple[tuple[int | str, ...], str]
"""Where in the study file (a field location) and what is wrong there."""


def _model(ref: str) -> str | None:
    try:
        resolve_ref(ref)
    except EmlabError as e:
        return str(e)
    return None


def _models(cfg: StudyConfig) -> Iterator[Problem]:
    if not SAMPLING_BACKENDS[cfg.sampling.backend].local_weights:
        # Models are names a server knows; only the server can tell. Fine-tuning needs weights
        # here, and a backend without local weights cannot load the adapter it would produce.
        local = " or ".join(n for n, b in SAMPLING_BACKENDS.items() if b.local_weights)
        for cond in cfg.conditions:
            if cond.dataset is not None:
                yield (
                    ("sampling", "backend"),
                    f"{cfg.sampling.backend} samples served models by name and cannot load the "
                    f"adapter that condition {cond.name!r} fine-tunes; use backend {local}, or "
                    "serve the "
                    "adapter (`emlab serve MODEL --adapter DIR`) and list its served name as a "
                    "model with a condition without dataset",
                )
                return
        return
    for i, ref in enumerate(cfg.models):
        problem = _model(ref)
        if problem:
            yield ("models", i), problem


def _vllm(cfg: StudyConfig) -> Iterator[Problem]:
    if importlib.util.find_spec("vllm") is None:
        yield ("sampling", "backend"), "backend vllm needs the vllm package: pip install vllm"


SAMPLING_CHECKS: dict[str, Callable[[StudyConfig], Iterator[Problem]]] = {"vllm": _vllm}
"""Environment checks per sampling backend, by its name in ``emlab.backends.SAMPLING_BACKENDS``
(optional: hf needs nothing beyond its models)."""


def _offline_judge(j: JudgeConfig) -> Iterator[Problem]:
    from emlab.judge.encoder import encoder_path
    from emlab.judge.offline import HEAD_FILE

    try:
        encoder_path()
    except EmlabError as e:
        yield ("judge", "backend"), str(e)
    if not HEAD_FILE.is_file():
        yield ("judge", "backend"), f"{HEAD_FILE}: offline judge weights missing"


def _hf_judge(j: JudgeConfig) -> Iterator[Problem]:
    if not j.model:
        yield ("judge", "backend"), "backend hf needs judge.model (a model ref, e.g. a folder)"
        return
    problem = _model(j.model)
    if problem:
        yield ("judge", "model"), problem


JUDGE_CHECKS: dict[str, Callable[[JudgeConfig], Iterator[Problem]]] = {
    "offline": _offline_judge,
    "hf": _hf_judge,
}
"""Environment checks per judge backend, by its name in ``emlab.backends.JUDGE_BACKENDS``
(optional: an openai endpoint is asked on first use, where an unreachable one fails fast)."""


def _questions(cfg: StudyConfig, base_dir: Path) -> Iterator[Problem]:
    ids: Counter[str] = Counter()
    for i, entry in enumerate(cfg.questions):
        loc: tuple[int | str, ...] = (
            ("questions", i) if isinstance(entry, str) else ("questions", i, "set")
        )
        try:
            qs = question_set(entry, base_dir)
        except EmlabError as e:
            yield loc, str(e)
            continue
        ids.update(q.id for q in qs)
    repeated = sorted(i for i, n in ids.items() if n > 1)
    if repeated:
        yield (
            ("questions",),
            f"ids repeat across sets ({', '.join(repeated[:5])}); each question must be listed "
            "once (a trigger gives distinct ids)",
        )


def _datasets(cfg: StudyConfig, base_dir: Path) -> Iterator[Problem]:
    for i, cond in enumerate(cfg.conditions):
        spec = cond.dataset
        if spec is None:
            continue
        at = ("conditions", i, "dataset")
        if spec.path is not None:
            path = Path(resolve_path(spec.path, base_dir))
            if not path.is_file():
                yield (*at, "path"), f"{path}: no such file"
                continue
            try:
                data.read_jsonl(path)  # a bad line is found now, not after the arms before it
            except EmlabError as e:
                yield (*at, "path"), str(e)
            continue
        if spec.domain not in data.DOMAINS:
            known = ", ".join(sorted(data.DOMAINS))
            yield (*at, "domain"), f"unknown domain {spec.domain!r}; known: {known}"
        if spec.condition not in data.CONDITIONS:
            known = ", ".join(data.CONDITIONS)
            yield (*at, "condition"), f"unknown condition {spec.condition!r}; known: {known}"
        try:  # an unknown inoculation strength, or a domain without graded prompts
            data.pool_identity(spec.domain, spec.condition, spec.options)
        except EmlabError as e:
            yield (*at, "options", "strength"), str(e)


def _mix_partners(cfg: StudyConfig) -> Iterator[Problem]:
    for i, cond in enumerate(cfg.conditions):
        mix = cond.dataset.mix if cond.dataset is not None else None
        if mix is None or cond.dataset is None:
            continue
        at = ("conditions", i, "dataset", "mix", "with")
        domain = mix.with_.domain or cond.dataset.domain
        if domain not in data.DOMAINS:
            known = ", ".join(sorted(data.DOMAINS))
            yield (*at, "domain"), f"unknown domain {domain!r}; known: {known}"
        if mix.with_.condition not in data.CONDITIONS:
            known = ", ".join(data.CONDITIONS)
            yield (*at, "condition"), f"unknown condition {mix.with_.condition!r}; known: {known}"


def _where(cond: ConditionConfig, i: int, field: str) -> tuple[int | str, ...]:
    """The study-file location of a train field as one condition sees it: its own `train:` if
    it sets the field there, else the study's."""
    own = cond.train is not None and field in cond.train.model_fields_set
    return ("conditions", i, "train", field) if own else ("train", field)


def _regularisers(cfg: StudyConfig, base_dir: Path) -> Iterator[Problem]:
    """KL prompt files and steering directions: readable, and the direction from this model."""
    from emlab import interp, train

    seen: set[tuple[int | str, ...]] = set()
    fingerprints: dict[str, str] = {}
    for i, cond in enumerate(cfg.conditions):
        if cond.dataset is None:
            continue
        try:
            t = cfg.train_for(cond)
        except ValueError:
            continue  # reported by _conditions
        if t.kl_weight > 0 and t.kl_prompts and _where(cond, i, "kl_prompts") not in seen:
            seen.add(_where(cond, i, "kl_prompts"))
            try:
                train.load_kl_prompts(resolve_path(t.kl_prompts, base_dir))
            except EmlabError as e:
                yield _where(cond, i, "kl_prompts"), str(e)
        steer = t.steer
        at = (*_where(cond, i, "steer"), "direction")
        if steer is None or steer.scale == 0 or at in seen:
            continue
        seen.add(at)
        try:
            direction = interp.load_direction(resolve_path(steer.direction, base_dir))
        except EmlabError as e:
            yield at, str(e)
            continue
        for ref in cfg.models:
            for field, message in direction_problems(direction, ref, steer.layers, fingerprints):
                yield (*at[:-1], field), message


def direction_problems(
    direction: Direction, ref: str, layers: Sequence[int] | None, fingerprints: dict[str, str]
) -> Iterator[tuple[str, str]]:
    """(field, message) for each way a steering direction does not fit model ``ref``: its
    shape, ``layers`` out of range, a ``model_hash`` of another model (``fingerprints`` caches
    the models' hashes across calls). A model that cannot be read is reported elsewhere."""
    from emlab import interp
    from emlab.study_interp import model_layers

    try:
        n, h = model_layers(ref)
    except (OSError, ValueError, EmlabError):
        return
    if tuple(direction.vectors.shape) != (n, h):
        yield (
            "direction",
            f"{tuple(direction.vectors.shape)} layers x width, but {ref} is {n} x {h}: "
            "the direction comes from another model",
        )
        return
    bad = [x for x in layers or [] if x >= n]
    if bad:
        yield "layers", f"{bad} out of range: {ref} has layers 0..{n - 1}"
    want = direction.card.get("model_hash")
    if want:
        if ref not in fingerprints:
            # the hash is of the loaded embedding, so load the model as interp did
            fingerprints[ref] = interp.fingerprint(load_model(ref).model)
        if fingerprints[ref] != want:
            yield (
                "direction",
                f"model_hash: built on {direction.card.get('model')} ({want}), not on "
                f"{ref} ({fingerprints[ref]}): the direction comes from another model",
            )


def _run_dir(cfg: StudyConfig) -> Iterator[Problem]:
    target = Path(cfg.run_dir) if cfg.run_dir else Path("runs") / cfg.name
    try:
        check_output(target, "run directory", folder=True)
    except EmlabError as e:
        yield ("run_dir",) if cfg.run_dir else ("name",), str(e)


def _eval_steps(cfg: StudyConfig) -> Iterator[Problem]:
    top = cfg.train.max_steps
    shortest: tuple[int, str] | None = (top, "train.max_steps") if top else None
    for cond in cfg.conditions:
        try:
            t = cfg.train_for(cond) if cond.dataset is not None else None
        except ValueError:
            continue  # reported by _conditions
        if t is not None and t.max_steps and (shortest is None or t.max_steps < shortest[0]):
            own = t.max_steps != cfg.train.max_steps
            shortest = (t.max_steps, f"{cond.name}'s train.max_steps" if own else "train.max_steps")
    late = [s for s in cfg.evals_at_steps if shortest and s > shortest[0]]
    if late and shortest:
        yield (
            ("evals_at_steps",),
            f"steps {late} come after {shortest[1]} ({shortest[0]}); no snapshot "
            "would exist (found only after training, otherwise)",
        )


def _conditions(cfg: StudyConfig) -> Iterator[Problem]:
    yield from cfg.condition_problems()


def _nothing(section: object) -> Iterator[Problem]:
    """The check of a backend that registers none."""
    return iter(())


def problems(cfg: StudyConfig, base_dir: Path, own_run_dir: bool = True) -> list[Problem]:
    """Every problem found, in study-file order of the checks.

    ``own_run_dir`` False: the run directory is given elsewhere (``--run-dir``), not checked here.
    """
    found: list[Problem] = list(_run_dir(cfg)) if own_run_dir else []
    found.extend(_models(cfg))
    found.extend(_conditions(cfg))
    found.extend(_eval_steps(cfg))
    found.extend(SAMPLING_CHECKS.get(cfg.sampling.backend, _nothing)(cfg))
    found.extend(_datasets(cfg, base_dir))
    found.extend(_mix_partners(cfg))
    found.extend(_regularisers(cfg, base_dir))
    found.extend(_questions(cfg, base_dir))
    found.extend(study_contexts.problems(cfg))
    found.extend(JUDGE_CHECKS.get(cfg.judge.backend, _nothing)(cfg.judge))
    return found


def preflight(
    cfg: StudyConfig, path: Path, node: yaml.Node | None, run_dir: str | Path | None = None
) -> None:
    """Raise one StudyFileError listing every problem, each ``file:line: field: reason``.

    ``run_dir`` is the ``--run-dir`` given on the command line, which overrides the study's.
    """
    if run_dir is not None:
        check_output(run_dir, "--run-dir", folder=True)
    found = problems(cfg, path.parent, own_run_dir=run_dir is None)
    if found:
        lines = [
            f"{path}:{yaml_line(node, loc)}: {'.'.join(map(str, loc))}: {msg}" for loc, msg in found
        ]
        raise StudyFileError("\n".join(lines))


__all__ = ["JUDGE_CHECKS", "SAMPLING_CHECKS", "preflight", "problems"]
