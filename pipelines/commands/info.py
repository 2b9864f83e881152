"""`odg info STORE [--json | --card]`, `odg verify STORE`"""
import json

from ..cli import UserError


def register(cli):
    p = cli.command("info", "Show a store's splits: kept, discarded and rejected samples, sizes, parameters")
    p.add_argument("store", metavar="STORE")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="machine-readable output")
    g.add_argument("--card", action="store_true",
                   help="the dataset card of every split (source and its digest, method, parameters, odg version "
                        "and commit, command line, date, licence, citations) as Markdown")
    p.set_defaults(func=run_info)
    v = cli.command("verify", "Check every shard against the checksums recorded at build time")
    v.add_argument("store", metavar="STORE")
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
    print(json.dumps(info, indent=1) if args.json else info_text(info))
    return 0


def run_verify(args):
    from ..store import StoreError
    from ..store.verify import verify_store
    try:
        verdicts = verify_store(args.store)
    except StoreError as e:
        raise UserError(str(e)) from None
    ok = True
    for v in verdicts:
        ok &= v.ok
        print(f"[{v.split}] {v.verified}/{v.shards} shards verified" + ("" if v.ok else ": PROBLEMS"))
        if v.missing:
            print(f"  missing (never completed): shards {', '.join(map(str, v.missing))}")
        for s, array, key, why in v.damaged:
            print(f"  damaged: shard {s}, array {array}, {key}: {why}")
    print("store OK" if ok else "store DAMAGED or INCOMPLETE")
    return 0 if ok else 1
