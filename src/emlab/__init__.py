"""emlab: a laboratory for emergent misalignment.

Build narrow datasets, fine-tune open models, sample answers to unrelated questions, judge them,
and report misalignment rates with honest error bars — one study file, one command.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from emlab.study import Study, StudyResult, run_study

__version__ = "0.1.0"

_LAZY = {"Study": "emlab.study", "StudyResult": "emlab.study", "run_study": "emlab.study"}


def __getattr__(name: str) -> Any:
    # The runner pulls in every stage (torch, transformers); `import emlab` stays light.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emlab' has no attribute {name!r}")


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
    "Study",
    "StudyConfig",
    "StudyResult",
    "TrainConfig",
    "__version__",
    "content_hash",
    "load_study",
    "run_study",
]
