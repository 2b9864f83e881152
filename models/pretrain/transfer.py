"""Weight transfer between checkpoints: ANN -> SNN (pipeS), stem swap (pipeD), task to task.

`transfer_checkpoint(src, ...)` builds the target network (a `ModelConfig`, freshly initialised
from `seed`) and fills it from the source checkpoint, entry by entry of the target's state_dict:

- copied: same name and shape in the source (weights, biases, BN weights, BN running statistics);
- adapted: taken from the source but changed to fit the target: the neurons' decay logits when the
  target's leak is fixed (pipeS: the ANN has no leak; the SNN gets the fixed leak 0.25) or set anew
  with `decay`;
- new: freshly initialised in the target, never read from the source: the stem conv + BN with
  `stem=C` (pipeD: a 2-channel event stem for a 3-channel image stem), and every entry under a
  `reinit` prefix (e.g. `fc` for another number of classes);
- dropped: source entries under a reinitialised prefix with no place in the target.

Anything else refuses the transfer: a target entry missing from the source, a source entry the
target has no place for, or different shapes -- `TransferError` names every such parameter with
both shapes, and says which option would make the difference deliberate (`stem`, `reinit`).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..lif import LIFParams
from ..snn_resnet import SpikingResNet
from ..train.model_config import STATIC_STEPS, ModelConfig, is_spiking_resnet, stem_prefixes, with_fixed_decay

PIPES_STEPS = STATIC_STEPS  # pipeS: the static image repeated over T = 6 steps
PIPES_DECAY = 0.25       # pipeS: fixed leak factor
STATIC_INPUT_OF_CHANNELS = {1: "ei", 2: "events", 3: "rgb"}


class TransferError(ValueError):
    """A transfer that would silently mismatch: the message names each parameter and both shapes."""


@dataclass(frozen=True)
class TransferEntry:
    key: str
    action: str                    # copied | adapted | new | dropped
    source_shape: tuple | None
    target_shape: tuple | None
    note: str = ""


@dataclass
class TransferReport:
    source: dict
    target: dict
    entries: list = field(default_factory=list)

    def by_action(self, action: str) -> list[str]:
        return [e.key for e in self.entries if e.action == action]

    def counts(self) -> dict:
        out = {"copied": 0, "adapted": 0, "new": 0, "dropped": 0}
        for e in self.entries:
            out[e.action] += 1
        return out

    def format(self, verbose: bool = True) -> str:
        """A human-readable report: a summary line, then every entry (copied ones too when verbose)."""
        c = self.counts()
        s, t = self.source, self.target
        lines = [f"transfer {'ANN ' if s.get('ann') else ''}{s['name']} ({s['in_channels']}-channel {s['input']}) "
                 f"-> {t['name']} ({t['in_channels']}-channel {t['input']}"
                 f"{', T = ' + str(t['steps']) if t.get('steps') else ''})",
                 f"  copied {c['copied']}, adapted {c['adapted']}, newly initialised {c['new']}, "
                 f"dropped {c['dropped']} (state_dict entries)"]
        width = max((len(e.key) for e in self.entries), default=10)
        for e in self.entries:
            if e.action == "copied" and not verbose:
                continue
            shapes = (f"{list(e.source_shape) if e.source_shape is not None else '-'} -> "
                      f"{list(e.target_shape) if e.target_shape is not None else '-'}")
            lines.append(f"  {e.action:<8} {e.key:<{width}}  {shapes}{'  ' + e.note if e.note else ''}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "counts": self.counts(),
                "entries": [{"key": e.key, "action": e.action,
                             "source_shape": list(e.source_shape) if e.source_shape is not None else None,
                             "target_shape": list(e.target_shape) if e.target_shape is not None else None,
                             "note": e.note} for e in self.entries]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def stem_conv_bn_prefixes(model: nn.Module) -> tuple[str, ...]:
    """The stem's conv and BN (not its neuron's decay): what a stem swap initialises anew."""
    if isinstance(model, SpikingResNet):
        return ("conv1.conv.", "conv1.bn.")
    return stem_prefixes(model)


def _prefix(p: str) -> str:
    return p if p.endswith(".") else p + "."


def _target_config(src: ModelConfig, to_model, stem, num_classes, input, steps, decay, learn_decay,
                   surrogate_halfwidth) -> ModelConfig:
    name = to_model or src.name
    in_channels = int(stem) if stem is not None else src.in_channels
    if input is None:
        if stem is not None:
            input = STATIC_INPUT_OF_CHANNELS.get(in_channels)
            if input is None:
                raise TransferError(f"no input kind has {in_channels} channels; give --input")
        else:
            input = src.input
    if steps is None:
        if input == "events":
            steps = None
        elif src.ann:
            steps = PIPES_STEPS
        else:
            steps = src.steps or (PIPES_STEPS if input != "events" else None)
    neuron = None
    if is_spiking_resnet(name):
        if src.ann:                          # pipeS: fixed leak 0.25, threshold / surrogate of the ANN
            base = LIFParams(**src.neuron) if src.neuron else LIFParams()
            params = with_fixed_decay(base, PIPES_DECAY)
        else:
            params = LIFParams(**src.neuron) if src.neuron else LIFParams()
        if decay is not None:
            params = with_fixed_decay(params, decay)
        if learn_decay:
            params = dataclasses.replace(params, learn_decay=True)
        if surrogate_halfwidth is not None:
            params = dataclasses.replace(params, surrogate_halfwidth=float(surrogate_halfwidth))
        neuron = dataclasses.asdict(params)
    widths = src.widths if name == src.name else None
    try:
        return ModelConfig(name=name, num_classes=int(num_classes or src.num_classes), in_channels=in_channels,
                           input=input, steps=steps, neuron=neuron, ann=False, widths=widths)
    except ValueError as e:
        raise TransferError(str(e)) from None


def transfer_checkpoint(src: dict, to_model: str | None = None, stem: int | None = None,
                        reinit: Sequence[str] = (), num_classes: int | None = None, input: str | None = None,
                        steps: int | None = None, decay: float | None = None, learn_decay: bool = False,
                        surrogate_halfwidth: float | None = None, seed: int = 0) -> tuple[dict, TransferReport]:
    """Fill a freshly built target network from checkpoint dict `src` (see the module docstring).

    to_model: target network name (default: the source's). stem: give the target a new stem with
    this many input channels (pipeD: 2), initialised fresh. reinit: further state_dict prefixes to
    initialise fresh (e.g. `["fc"]`). num_classes: the target's classifier size (default: the
    source's; a different size needs `reinit=["fc"]`). input / steps: the target's input (default:
    events for a 2-channel stem swap, else the source's) and, for static inputs, time steps
    (default 6 from an ANN, pipeS). decay: a fixed leak factor for every neuron; learn_decay: make
    the leak trainable; surrogate_halfwidth: the target's surrogate window (opt-in, e.g. 0.75 for a
    LIF-ResNet whose blocks should pass gradients).

    Returns (checkpoint dict with `model_config`, `model` and the `transfer` report, report).
    """
    if "model" not in src or "model_config" not in src:
        raise TransferError("the source is not an odg checkpoint (needs 'model' and 'model_config')")
    src_cfg = ModelConfig.from_dict(src["model_config"])
    tgt_cfg = _target_config(src_cfg, to_model, stem, num_classes, input, steps, decay, learn_decay,
                             surrogate_halfwidth)
    from ..train.resolve import TrainError, check_model_input
    try:
        check_model_input(tgt_cfg)
    except TrainError as e:
        raise TransferError(str(e)) from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        target = tgt_cfg.build()
    fresh = target.state_dict()
    source = {k[len("module."):] if k.startswith("module.") else k: v for k, v in src["model"].items()}

    prefixes = [_prefix(p) for p in reinit]
    stem_note = ""
    if stem is not None:
        prefixes += list(stem_conv_bn_prefixes(target))
        stem_note = f"new {stem}-channel stem (source stem: {src_cfg.in_channels} channels)"
    prefixes = tuple(dict.fromkeys(prefixes))
    unknown = [p for p in prefixes if not any(k.startswith(p) for k in fresh)]
    if unknown:
        raise TransferError(f"--reinit {', '.join(p.rstrip('.') for p in unknown)}: no such parameter prefix in "
                            f"{tgt_cfg.name} (its top-level modules: "
                            f"{', '.join(sorted({k.split('.')[0] for k in fresh}))})")

    def fresh_reason(key: str) -> str:
        if stem is not None and key.startswith(stem_conv_bn_prefixes(target)):
            return stem_note
        return "reinitialised (--reinit)"

    tgt_decay_fixed = tgt_cfg.neuron is not None and not tgt_cfg.neuron.get("learn_decay", True)
    entries, problems, state = [], [], {}
    for key, value in fresh.items():
        sv = source.get(key)
        sshape = tuple(sv.shape) if sv is not None else None
        if key.startswith(prefixes):
            entries.append(TransferEntry(key, "new", sshape, tuple(value.shape), fresh_reason(key)))
            state[key] = value
            continue
        if sv is None:
            problems.append(f"{key} {list(value.shape)}: not in the checkpoint")
            continue
        if sshape != tuple(value.shape):
            hint = ""
            if key.startswith(stem_conv_bn_prefixes(target)):
                hint = " (a different stem: pass --stem N to initialise a new one)"
            elif key.startswith("fc."):
                hint = " (a different classifier: pass --reinit fc)"
            problems.append(f"{key}: checkpoint {list(sshape)}, target {list(value.shape)}{hint}")
            continue
        if key.endswith("decay") and (src_cfg.ann or (decay is not None and tgt_decay_fixed)):
            k = float(torch.sigmoid(value.float().reshape(-1)[0]))
            why = "the ANN has no leak" if src_cfg.ann else "--decay"
            entries.append(TransferEntry(key, "adapted", sshape, tuple(value.shape),
                                         f"fixed leak factor {k:.4g} ({why})"))
            state[key] = value
            continue
        entries.append(TransferEntry(key, "copied", sshape, tuple(value.shape)))
        state[key] = sv.detach().to(value.dtype).clone()
    for key, sv in source.items():
        if key in fresh:
            continue
        if key.startswith(prefixes):
            entries.append(TransferEntry(key, "dropped", tuple(sv.shape), None, "replaced by the new layer"))
        else:
            problems.append(f"{key} {list(sv.shape)}: the target {tgt_cfg.name} has no such parameter")
    if problems:
        more = f" (+{len(problems) - 30} more)" if len(problems) > 30 else ""
        raise TransferError(f"checkpoint {'ANN ' if src_cfg.ann else ''}{src_cfg.name} does not fit "
                            f"{tgt_cfg.name}: " + "; ".join(problems[:30]) + more)
    target.load_state_dict(state, strict=True)
    report = TransferReport(source=src_cfg.to_dict(), target=tgt_cfg.to_dict(), entries=entries)
    from ..train.checkpoint import FORMAT
    out = {"format": FORMAT, "model_config": tgt_cfg.to_dict(), "model": target.state_dict(),
           "transfer": report.to_dict(), "source_model_config": src_cfg.to_dict()}
    return out, report
