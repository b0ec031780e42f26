"""emlab: a laboratory for emergent misalignment.

Build narrow datasets, fine-tune open models, sample answers to unrelated questions, judge them,
and report misalignment rates with honest error bars — one study file, one command.
"""

from emlab.config import (
    ConditionConfig,
    DatasetSpec,
    JudgeConfig,
    MetricsConfig,
    SamplingConfig,
    StudyConfig,
    TrainConfig,
    load_study,
)
from emlab.records import (
    Example,
    Generation,
    GenerationRequest,
    Judgment,
    Message,
    Question,
    SamplingParams,
    ScoredAnswer,
    content_hash,
)
from emlab.store import Store

__version__ = "0.1.0"

__all__ = [
    "ConditionConfig",
    "DatasetSpec",
    "Example",
    "Generation",
    "GenerationRequest",
    "JudgeConfig",
    "Judgment",
    "Message",
    "MetricsConfig",
    "Question",
    "SamplingConfig",
    "SamplingParams",
    "ScoredAnswer",
    "Store",
    "StudyConfig",
    "TrainConfig",
    "__version__",
    "content_hash",
    "load_study",
]
