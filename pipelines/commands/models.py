"""`odg models list` and `odg models summary NAME`: the model zoo. torch is imported only when run."""
from __future__ import annotations


def _list(args) -> int:
    from odg import models

    rows = [models.summary(name) for name in models.list_models()]
    print(f"{'name':<18} {'parameters':>12} {'GMACs':>8}  {'input':<22} description")
    for s in rows:
        spec = models.zoo.spec(s.name)
        print(f"{s.name:<18} {s.parameters:>12,} {s.macs / 1e9:>8.2f}  {s.input_layout:<22} {spec.description}")
    return 0


def _summary(args) -> int:
    from odg import models
    from odg.pipelines.cli import UserError

    if args.name not in models.list_models():
        raise UserError(f"unknown model {args.name!r}; known: {', '.join(models.list_models())}")
    shape = tuple(args.input_shape) if args.input_shape else None
    s = models.summary(args.name, input_shape=shape)
    spec = models.zoo.spec(s.name)
    print(f"model        {s.name}: {spec.description}")
    print(f"parameters   {s.parameters:,} (trainable)")
    print(f"multiply-adds {s.macs:,} ({s.macs / 1e9:.2f} G) for input {list(s.input_shape)}")
    print(f"input layout {s.input_layout}")
    print(f"output       {list(s.output_shape)}")
    if s.neuron:
        print(f"neurons      {s.neuron}")
    return 0


def register(cli) -> None:
    p = cli.command("models", "List and describe the model zoo")
    sub = p.add_subparsers(dest="models_action", metavar="ACTION")
    ls = sub.add_parser("list", help="every model with its parameters, multiply-adds and input layout")
    ls.set_defaults(func=_list)
    sm = sub.add_parser("summary", help="parameters, multiply-adds and input layout of one model")
    sm.add_argument("name", help="a model name from `odg models list`")
    sm.add_argument("--input-shape", type=int, nargs="+", metavar="N",
                    help="input shape to count multiply-adds on (default: the published input, batch 1)")
    sm.set_defaults(func=_summary)
    p.set_defaults(func=_list)
