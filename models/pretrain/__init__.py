"""Pretraining as a bridge (docs/MODELS.md): pipeS (a sharpened-ReLU ANN whose weights load into the
identically shaped LIF SNN) and pipeD (a pretrained network's stem swapped for a 2-channel event
stem), with weight transfers that report what was copied, adapted or newly initialised.
See docs/TRAINING.md."""
from .sharpened_relu import is_sharpened, ramp, set_sharpness, sharpen, sharpened_relu
from .transfer import TransferError, TransferReport, transfer_checkpoint

__all__ = ["TransferError", "TransferReport", "is_sharpened", "ramp", "set_sharpness", "sharpen",
           "sharpened_relu", "transfer_checkpoint"]
