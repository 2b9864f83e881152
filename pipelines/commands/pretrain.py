"""`odg pretrain ann` and `odg pretrain transfer`: pretraining as a bridge (pipeS, pipeD).

torch is imported only when a command runs."""
from __future__ import annotations

from .train import add_training_arguments, run_training


def _ann(args) -> int:
    return run_training(args, default_preset="pipes-ann", ann=True)


def _transfer(args) -> int:
    from pathlib import Path

    from odg.models.pretrain.transfer import TransferError, transfer_checkpoint
    from odg.models.train import checkpoint as ckpt_io
    from odg.pipelines.cli import UserError

    try:
        src = ckpt_io.load(args.source)
    except (ValueError, OSError) as e:
        raise UserError(f"--from: {e}") from None
    reinit = [p for group in (args.reinit or []) for p in group.split(",") if p]
    try:
        out, report = transfer_checkpoint(
            src, to_model=args.to_model, stem=args.stem, reinit=reinit, num_classes=args.num_classes,
            input=args.input, steps=args.steps, decay=args.decay, learn_decay=args.learn_decay,
            surrogate_halfwidth=args.surrogate_halfwidth, seed=args.seed)
    except (TransferError, ValueError) as e:
        raise UserError(str(e)) from None
    path = ckpt_io.save(out, args.out)
    report_path = Path(args.report) if args.report else path.with_name(path.name + ".transfer.json")
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(report.to_json() + "\n")
    print(report.format(verbose=not args.brief))
    print(f"wrote {path} (report: {report_path})")
    return 0


def register(cli) -> None:
    g = cli.group("pretrain", "Pretraining as a bridge: pipeS (sharpened-ReLU ANN -> LIF SNN) and pipeD "
                              "(stem swap to events)")
    a = g.add_parser("ann", help="pipeS: train the sharpened-ReLU ANN twin of a LIF/LIAF ResNet on static images",
                     description="Train the ANN whose activation is a clipped ramp from min(e/200, 0.49) to "
                                 "1 - e/200 at epoch e (sharpening toward the LIF spike), with the SNN's "
                                 "rectangular surrogate as its backward, on static images of the store.")
    add_training_arguments(a, default_preset="pipes-ann", ann=True)
    a.set_defaults(func=_ann)

    t = g.add_parser("transfer", help="load a checkpoint's weights into another network (ANN -> SNN, stem swap, "
                                      "new task), with a report",
                     description="Fill a freshly built network from a checkpoint: every parameter and BN "
                                 "statistic copied where names and shapes agree; a new stem or classifier only "
                                 "where asked (--stem, --reinit); anything else refused, naming the parameter "
                                 "and both shapes. Prints and writes a report of what was copied, adapted or "
                                 "newly initialised.")
    t.add_argument("--from", dest="source", required=True, metavar="CKPT",
                   help="source checkpoint (odg pretrain ann / odg train run's last.pt / a transfer output)")
    t.add_argument("--out", required=True, metavar="CKPT", help="the checkpoint to write (for odg train --init)")
    t.add_argument("--to-model", metavar="NAME", help="target network (default: the source's; a LIF ResNet for pipeS)")
    t.add_argument("--stem", type=int, metavar="C",
                   help="a new, freshly initialised stem conv + BN with C input channels (pipeD: 2, events)")
    t.add_argument("--reinit", action="append", metavar="PREFIX",
                   help="also initialise these state_dict prefixes fresh (repeatable or comma-separated), "
                        "e.g. fc for a new classifier, conv1 for the whole input layer")
    t.add_argument("--num-classes", type=int, help="target classifier size (a new size needs --reinit fc)")
    t.add_argument("--input", choices=("events", "mean", "ei", "rgb"),
                   help="target input (default: events after --stem 2, else the source's)")
    t.add_argument("--steps", type=int, metavar="T",
                   help="time steps a static input is repeated over (default 6 from an ANN: pipeS)")
    t.add_argument("--decay", type=float, metavar="K", help="fixed leak factor of every neuron (from an ANN: 0.25)")
    t.add_argument("--learn-decay", action="store_true", help="make the leak trainable in the target")
    t.add_argument("--surrogate-halfwidth", type=float, metavar="H",
                   help="target surrogate window (opt-in, e.g. 0.75 so a LIF-ResNet's blocks pass gradients)")
    t.add_argument("--seed", type=int, default=0, help="seed of the fresh initialisation of new layers")
    t.add_argument("--report", metavar="JSON", help="where to write the report (default CKPT.transfer.json)")
    t.add_argument("--brief", action="store_true", help="print only what was not copied as is")
    t.set_defaults(func=_transfer)
