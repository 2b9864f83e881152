"""`odg info STORE [--json | --card]`, `odg verify STORE [--json]`"""
from ..cli import UserError
from ._options import add_json, add_output_options, emit


def register(cli):
    p = cli.command("info", "Show a store's splits: kept, discarded and rejected samples, sizes, parameters")
    p.add_argument("store", metavar="STORE")
    g = p.add_mutually_exclusive_group()
    add_json(g)
    g.add_argument("--card", action="store_true",
                   help="the dataset card of every split (source and its digest, method, parameters, odg version "
                        "and commit, command line, date, licence, citations) as Markdown")
    p.set_defaults(func=run_info)
    v = cli.command("verify", "Check every shard against the checksums recorded at build time "
                              "(exit status 1 when anything is damaged or missing)")
    v.add_argument("store", metavar="STORE")
    add_output_options(v)
    v.set_defaults(func=run_verify)


def run_info(args):
    from ..info import info_text, store_info
    from ..store import StoreError, open_store
    if args.card:
        from ..card import card_markdown, read_cards
        try:
            print(card_markdown(args.store, read_cards(open_store(args.store))), end="")
        except StoreError as e:
            raise UserError(str(e)) from None
        return 0
    try:
        info = store_info(args.store)
    except StoreError as e:
        raise UserError(str(e)) from None
    emit(args, info_text(info), info)
    return 0


def run_verify(args):
    import sys

    from ..store import StoreError
    from ..store.verify import verify_store
    try:
        verdicts = verify_store(args.store)
    except StoreError as e:
        raise UserError(str(e)) from None
    ok = all(v.ok for v in verdicts)
    lines = []
    for v in verdicts:
        lines.append(f"[{v.split}] {v.verified}/{v.shards} shards verified" + ("" if v.ok else ": PROBLEMS"))
        if v.missing:
            lines.append(f"  missing (never completed): shards {', '.join(map(str, v.missing))}")
        lines += [f"  unreadable marker: shard {s}: {why} (the shard counts as not built)" for s, why in v.unreadable]
        lines += [f"  damaged: shard {s}, array {array}, {key}: {why}" for s, array, key, why in v.damaged]
    lines.append("store OK" if ok else "store DAMAGED or INCOMPLETE")
    if not (args.quiet and ok) or args.json:      # -q: silent when the store is OK
        emit(args, "\n".join(lines), {
            "store": args.store, "ok": ok,
            "splits": {v.split: {"shards": v.shards, "verified": v.verified, "ok": v.ok, "missing": list(v.missing),
                                 "unreadable": [{"shard": s, "why": w} for s, w in v.unreadable],
                                 "damaged": [{"shard": s, "array": a, "key": k, "why": w} for s, a, k, w in v.damaged]}
                       for v in verdicts}})
    if not ok:
        print(f"odg: error: {args.store} is damaged or incomplete (see above)", file=sys.stderr)
    return 0 if ok else 1
