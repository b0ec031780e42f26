"""What each arm of a study is, as a mitigation setting: for the report's mitigations section.

A mitigation setting is just a condition (trained and evaluated like any other), so the report
needs to know only what distinguishes one: its inoculation strength, the arm it continued from,
its mixing dose, its per-condition training changes (KL weight, steering, steps) and how many
steps it trained. This module reads that from the study config (and the built datasets, for the
step counts) into plain JSON kept in ``report_info.json``; the report never reads a config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emlab.config import ConditionConfig, StudyConfig
from emlab.metrics import ArmInfo
from emlab.train.data import total_steps


def _describe(cond: ConditionConfig, own_train: dict[str, Any]) -> str:
    """A short human description of a condition as a setting, e.g. ``inoculated (strong)``."""
    if cond.dataset is None:
        return "the untouched base model"
    d = cond.dataset
    parts = [f"{d.domain}/{d.condition}"]
    if d.path:
        parts = [f"file {d.path}"]
    strength = d.options.get("strength")
    if strength:
        parts.append(f"{strength} inoculation pool")
    if d.mix is not None:
        parts.append(f"mixed {d.mix.fraction:g} with {d.mix.with_.condition}")
    if d.interleave is not None:
        parts.append(f"+{d.interleave.fraction:g} general data")
    if cond.start_from:
        parts.append(f"continues {cond.start_from}")
    for key in ("kl_weight", "max_steps", "epochs", "learning_rate"):
        if key in own_train:
            parts.append(f"{key} {own_train[key]:g}")
    steer = own_train.get("steer")
    if steer:
        parts.append(f"steered x{steer.get('scale', 0):g}")
    return ", ".join(parts)


def changes_training(cfg: StudyConfig, cond: ConditionConfig) -> bool:
    """Whether a mitigation changes how a condition is trained: a continuation, a mix, general
    data, or its own recipe that differs from the study's."""
    d = cond.dataset
    if d is None:
        return False
    changed = cond.start_from is not None or d.mix is not None or d.interleave is not None
    return changed or cfg.train_for(cond).identity() != cfg.train.identity()


def is_mitigation(cfg: StudyConfig, cond: ConditionConfig) -> bool:
    """A condition that uses a mitigation knob (rather than being the organism or a control):
    inoculation, or anything that :func:`changes_training`."""
    d = cond.dataset
    return d is not None and (d.condition == "inoculated" or changes_training(cfg, cond))


def settings(
    cfg: StudyConfig, arms: list[ArmInfo], n_examples: Callable[[ConditionConfig], int]
) -> list[dict[str, Any]]:
    """One entry per reported arm label: what it is (``what``), where it comes from, and the
    training steps of its final adapter (``steps``; None for the base model).
    ``n_examples(cond)`` is the size of a condition's built training set."""
    by_name = {c.name: c for c in cfg.conditions}
    steps: dict[str, int | None] = {}
    out = []
    for a in arms:
        cond = by_name[a.condition]
        own = {} if cond.train is None else cond.train.model_dump(exclude_unset=True)
        if cond.name not in steps:
            t = cfg.train_for(cond)
            steps[cond.name] = (
                None
                if cond.dataset is None
                else total_steps(n_examples(cond), t.batch_size, t.epochs, t.max_steps)
            )
        d = cond.dataset
        out.append(
            {
                "name": a.name,
                "condition": a.condition,
                "kind": a.kind,
                "scale": a.scale,
                "context": a.context,
                "plain": a.plain,
                "parent": a.parent,
                "what": _describe(cond, own),
                "framing": None if d is None else d.condition,
                "mitigation": is_mitigation(cfg, cond),
                "strength": None if d is None else d.options.get("strength"),
                "mix_fraction": None if d is None or d.mix is None else d.mix.fraction,
                "mix_with": None if d is None or d.mix is None else d.mix.with_.condition,
                "interleave_fraction": (
                    None if d is None or d.interleave is None else d.interleave.fraction
                ),
                "train": own,
                "steps": steps[cond.name],
            }
        )
    return out
