"""Training for the event datasets: `odg train` and `odg pretrain ann` run `train(TrainOptions(...))`.

- `presets`: the published recipes (and pipeS/pipeD's) as a frozen table of `Recipe`s;
- `model_config`: `ModelConfig`, the network and its input, kept in every checkpoint;
- `inputs`: loaders over a store's splits and the batch -> model-input conversion
  (events, time-averaged frames, Edge-Integral, source JPEGs; optional average-pooling);
- `distributed`: torchrun / DDP (NCCL on CUDA with SyncBatchNorm, gloo on CPU);
- `checkpoint`: atomic checkpoints with RNG states, for exact resumption;
- `metrics`: metrics.jsonl and the accuracy-against-wall-time plot;
- `loop`: the loop itself.
See docs/TRAINING.md.
"""
from .checkpoint import load as load_checkpoint, save as save_checkpoint, state_hash
from .loop import TrainError, TrainOptions, evaluate, train
from .metrics import plot_accuracy_vs_time, read_metrics, topk_correct
from .model_config import INPUTS, ModelConfig, build_model, fixed_decay_params, known_models, model_spec
from .presets import DEFAULT_PRESET, PRESETS, Recipe, get_preset, list_presets

__all__ = [
    "DEFAULT_PRESET", "INPUTS", "ModelConfig", "PRESETS", "Recipe", "TrainError", "TrainOptions",
    "build_model", "evaluate", "fixed_decay_params", "get_preset", "known_models", "list_presets",
    "load_checkpoint", "model_spec", "plot_accuracy_vs_time", "read_metrics", "save_checkpoint", "state_hash",
    "topk_correct", "train",
]
