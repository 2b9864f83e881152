"""Training for the event datasets: `odg train` and `odg pretrain ann` run `train(TrainOptions(...))`.

- `presets`: the published recipes (and pipeS/pipeD's) as a frozen table of `Recipe`s;
- `model_config`: `ModelConfig`, the network and its input, kept in every checkpoint;
- `inputs`: loaders over a store's splits and the batch -> model-input conversion
  (events, time-averaged frames, Edge-Integral, source JPEGs; optional average-pooling);
- `distributed`: torchrun / DDP (NCCL on CUDA with SyncBatchNorm, gloo on CPU);
- `checkpoint`: atomic checkpoints with RNG states, for exact resumption;
- `metrics`: metrics.jsonl and the accuracy-against-wall-time plot;
- `options`: `TrainOptions`, and the requests (`ModelRequest`, `RecipeRequest`) a run may give
  instead of an exact network and recipe;
- `resolve`: settles a run's configuration once (network, recipe, run directory, data) against the
  store, the `init` checkpoint and the run being resumed;
- `loop`: the loop itself (`train`: resolve, start, then per epoch `train_one_epoch`, `evaluate`,
  `save_epoch`).
See docs/TRAINING.md.
"""
from .checkpoint import load as load_checkpoint
from .checkpoint import save as save_checkpoint
from .checkpoint import state_hash
from .loop import evaluate, train, train_one_epoch
from .metrics import plot_accuracy_vs_time, read_metrics, topk_correct
from .model_config import INPUTS, ModelConfig, build_model, fixed_decay_params, known_models, model_spec
from .options import ModelRequest, RecipeRequest, TrainError, TrainOptions
from .presets import DEFAULT_PRESET, PRESETS, Recipe, get_preset, list_presets
from .resolve import resolve

__all__ = [
    "DEFAULT_PRESET", "INPUTS", "ModelConfig", "ModelRequest", "PRESETS", "Recipe", "RecipeRequest", "TrainError",
    "TrainOptions", "build_model", "evaluate", "fixed_decay_params", "get_preset", "known_models", "list_presets",
    "load_checkpoint", "model_spec", "plot_accuracy_vs_time", "read_metrics", "resolve", "save_checkpoint",
    "state_hash", "topk_correct", "train", "train_one_epoch",
]
