"""The train stage: the paper's open-model LoRA/rsLoRA SFT recipe, resumable and observable.

``finetune`` trains a PEFT adapter on chat examples with the loss on assistant tokens only
(``assistant_labels`` works for any chat template), checkpoints resumable state into a work
folder, and reports every step through a callback. ``export_merged`` folds an adapter into its
base model for tools that do not read adapters.

Devices: one CUDA GPU (``emlab.models.choose_device``) or the CPU, in bf16 where the hardware has
it; or several processes of one run under ``accelerate launch``/``torchrun`` (data-parallel, a
whole model copy per process: the 0.5B-32B models of the EM literature fit one GPU with LoRA;
``emlab.train.distributed``).
"""

from emlab.train.data import TrainDataError
from emlab.train.distributed import LaunchError
from emlab.train.export import export_merged
from emlab.train.labels import IGNORE_INDEX, assistant_labels
from emlab.train.loop import TrainResult, choose_threads, finetune, lr_factor
from emlab.train.mitigate import Steering, TrainInputs, load_kl_prompts

__all__ = [
    "IGNORE_INDEX",
    "LaunchError",
    "Steering",
    "TrainDataError",
    "TrainInputs",
    "TrainResult",
    "assistant_labels",
    "choose_threads",
    "export_merged",
    "finetune",
    "load_kl_prompts",
    "lr_factor",
]
