"""Looking inside: activation capture, misalignment directions, projections and signatures.

The stage never samples or judges itself: ``study.py`` and ``study_interp.py`` compose it with
the sampler (which applies steering and ablation through ``emlab.models.hooks``) and the judge.
"""

from emlab.interp.capture import Captured, cached_capture, capture
from emlab.interp.directions import (
    ContrastError,
    Direction,
    DirectionFileError,
    check_fits,
    cosine_matrix,
    fingerprint,
    fit_direction,
    judged_split,
    load_direction,
    load_pool,
    persona_questions,
    projection,
    random_control,
    save_direction,
    without_system,
)

__all__ = [
    "Captured",
    "ContrastError",
    "Direction",
    "DirectionFileError",
    "cached_capture",
    "capture",
    "check_fits",
    "cosine_matrix",
    "fingerprint",
    "fit_direction",
    "judged_split",
    "load_direction",
    "load_pool",
    "persona_questions",
    "projection",
    "random_control",
    "save_direction",
    "without_system",
]
