"""The report's sections beyond the per-split numbers: the conversion method, the dataset cards, the
table of other neuromorphic datasets, per-sample distributions and class balance, and a
store-to-store comparison (`odg compare`), which also makes a page of its own."""
from __future__ import annotations

import json
from html import escape

from .html import CSS, _n, fig, table


def _v(x) -> str:
    return escape(json.dumps(x)) if isinstance(x, (list, dict, bool)) or x is None else escape(str(x))


def method_section(m: dict, figs_note: str = "") -> str:
    o = ['<h2 id="method">Conversion method and parameters</h2>', f"<p><b>{escape(m['name'])}</b>. "]
    if m["published_params"] is None:
        o[-1] += "odg knows no published parameter values for this method.</p>"
    elif m["published_params"]:
        o[-1] += 'Every parameter has its <span class="ok">published value</span>.</p>'
    else:
        o[-1] += '<span class="bad">Some parameters deviate from the published values</span> (marked).</p>'
    rows = [[f"<code>{escape(r['name'])}</code>", f"<code>{_v(r['value'])}</code>",
             "—" if r["published"] is None and not r["deviates"] else f"<code>{_v(r['published'])}</code>",
             '<span class="bad">deviates</span>' if r["deviates"] else ""] for r in m["params"]]
    o.append(table(["parameter", "value", "published", ""], rows))
    if figs_note:
        o.append(f'<p class="note">{figs_note}</p>')
    return "\n".join(o)


def card_section(cards: dict) -> str:
    from ..card import card_fields
    o = ['<h2 id="card">Dataset card</h2>',
         '<p class="note">Recorded in the store when each split was built (<code>odg info --card</code> prints it '
         "as Markdown).</p>"]
    for split, card in cards.items():
        o.append(f"<h3>Split <code>{escape(split)}</code></h3>")
        if card is None:
            o.append("<p>No card: built by an odg that did not write cards, or not complete.</p>")
            continue
        rows = []
        for field, value in card_fields(card):
            if isinstance(value, list):
                cell = "<br>".join(f"<code>{escape(v)}</code>" if field in ("parameters", "source digest")
                                   else escape(v) for v in value) or "—"
            elif field == "command":
                cell = f"<code>{escape(value)}</code>"
            else:
                cell = escape(value)
            rows.append([escape(field), cell])
        o.append(table(["", ""], rows))
    return "\n".join(o)


def datasets_section(od: dict) -> str:
    cols = od["columns"]
    srcs = list(od["sources"])
    used = []

    def cell(fact):
        if fact is None:
            return "—"
        k = fact["source"]
        if k not in used:
            used.append(k)
        ref = f'<sup><a href="#src-{escape(k)}">[{used.index(k) + 1}]</a></sup>'
        if fact["value"] is None:
            return f'<span class="note">not verified</span>{ref}'
        v = escape(fact["value"]) + ("" if fact["verified"] else ' <span class="note">(not verified)</span>')
        return v + ref
    rows = [[f"<b>{escape(d['name'])}</b>"] + [cell(d.get(c)) for c in cols] for d in od["datasets"]]
    t = od["this_store"]
    rows.append([f"<b>{escape(t['name'])}</b>"] + [escape(t[c]) for c in cols])
    o = ['<h2 id="datasets">Beside other neuromorphic classification datasets</h2>',
         table(["dataset"] + list(cols), rows),
         f'<p class="note">Published figures from <code>{escape(od["data_file"])}</code>; "not verified": the figure '
         "could not be checked on its source and is left out (or marked) rather than guessed.</p><ol>"]
    o += [f'<li id="src-{escape(k)}">{escape(od["sources"][k])}</li>' for k in used if k in srcs]
    o.append("</ol>")
    return "\n".join(o)


def _dist_row(label, d, digits=4):
    keys = ("mean", "std", "min", "p5", "p25", "median", "p75", "p95", "max")
    return [escape(label)] + ["—" if d[k] is None else f"{d[k]:,.{digits}g}" for k in keys]


def distributions_section(name: str, s: dict, figs: dict, unit: str) -> str:
    """Per-sample distributions, per-step spread, events against the resized shape, class balance."""
    o = ["<h3>Per-sample distributions</h3>"]
    oo = s["on_off"]
    rows = [_dist_row("events per sample", s["events_per_sample"], 6),
            _dist_row("event rate", s["event_rate_distribution"]),
            _dist_row("ON / OFF ratio", oo["ratio"]), _dist_row("ON fraction ON / (ON + OFF)", oo["on_fraction"]),
            _dist_row("events per resized pixel", s["events_vs_shape"]["events_per_pixel"])]
    o.append(table(["over kept samples", "mean", "std", "min", "p5", "p25", "median", "p75", "p95", "max"], rows,
                   numeric=range(1, 10)))
    o.append(f'<p class="note">ON / OFF of the totals: {_n(oo["of_totals"])}; samples without OFF events (ratio '
             f'undefined): {oo["undefined"]:,}.</p>')
    sp = s["events_per_step_spread"]
    if sp["q_bin_lo"].get("median") is not None:
        T = len(sp["mean"])
        body = [["mean"] + [_n(v, 0) for v in sp["mean"]], ["std"] + [_n(v, 0) for v in sp["std"]]]
        body += [[k] + [f"{v:,}–{v + sp['bin_width']:,}" for v in sp["q_bin_lo"][k]] for k in ("p5", "p25", "median",
                                                                                               "p75", "p95")]
        o.append(f"<p><b>Events per {escape(unit)}</b> (ON + OFF, per kept sample; quantiles as the histogram bin "
                 f"of {sp['bin_width']:,} events that holds them):</p>")
        o.append(table([f"{unit} t"] + [str(t + 1) for t in range(T)], body, numeric=range(1, T + 1)))
    ev = s["events_vs_shape"]
    o.append(f"<h3>Events against the resized shape</h3><p>Pearson correlation of events with the resized area "
             f"a · b: {_n(ev['pearson_events_area'])}.</p>")
    o.append(table(["short side (px)", "kept samples", "mean events", "std"],
                   [[f"{g['short_side'][0]}–{g['short_side'][1] - 1}", _n(g["kept"]), _n(g["mean_events"], 0),
                     _n(g["std_events"], 0)] for g in ev["by_short_side"]], numeric=(1, 2, 3)))
    o.append(fig(figs.get("events_vs_shape"), f"{name} events against the resized shape",
                 "Each dot a kept sample; black: mean ± std of each group of the short side."))
    pc = s["per_class"]
    cs = pc["class_sizes"]
    o.append(f"<h3>Class balance</h3><p>{pc['classes_present']:,} classes hold samples in this split; kept samples "
             f"per class: mean {_n(cs['mean'], 1)}, median {_n(cs['median'], 1)}, min {_n(cs['min'], 0)}, "
             f"max {_n(cs['max'], 0)}. Labels outside the class table: "
             + ", ".join(f"{v:,} {k}" for k, v in pc["unlabelled"].items()) + ".</p>")
    if pc["most_discarded"]:
        o.append(table(["class", "wnid", "name", "kept", "discarded", "rejected", "discarded share"],
                       [[str(e["label"]), escape(e["wnid"] or ""), escape(e["name"]), _n(e["kept"]), _n(e["discarded"]),
                         _n(e["rejected"]), f"{100 * e['discard_fraction']:.1f} %"] for e in pc["most_discarded"]],
                       numeric=(0, 3, 4, 5, 6)))
    o.append(fig(figs.get("class_balance"), f"{name} class balance",
                 "Histogram of kept samples per class" + (", and the classes losing the largest share of their "
                                                         "samples to the event floor." if pc["most_discarded"] else ".")))
    return "\n".join(o)


# -- comparison of two stores ----------------------------------------------------------------

def compare_section(c: dict) -> str:
    o = ['<h2 id="compare">Compared sample by sample</h2>',
         f'<p>A <code>{escape(c["a"])}</code> against B <code>{escape(c["b"])}</code>: samples matched by their '
         "published file (class and number, or the source name's stem); kept samples only. Parameters "
         + ('<span class="ok">equal</span>' if c["params_equal"] else '<span class="bad">differ</span>') + ". "
         + ('<b class="ok">The stores are equal sample by sample.</b>' if c["equal"]
            else '<b class="bad">The stores differ.</b>') + "</p>"]
    for side, lst in (("A", c["splits_only_in_a"]), ("B", c["splits_only_in_b"])):
        if lst:
            o.append(f'<p class="bad">Splits only in {side}: {escape(", ".join(lst))}</p>')
    rows = [[f"<code>{escape(s)}</code>", _n(v["matched"]), _n(v["identical"]), _n(v["different"]),
             _n(v["events_only_in_a"]), _n(v["events_only_in_b"]), _n(v["only_in_a"]), _n(v["only_in_b"])]
            for s, v in c["splits"].items()]
    o.append(table(["split", "kept in both", "identical", "different", "events only in A", "events only in B",
                    "samples only in A", "samples only in B"], rows, numeric=range(1, 8)))
    for s, v in c["splits"].items():
        if v["differences"]:
            o.append(f"<p><b>[{escape(s)}] different</b> ({v['different']:,}; {len(v['differences']):,} listed):</p>")
            o.append(table(["published file", "A", "B", "differs in", "events A", "events B", "only in A", "only in B"],
                           [[f"<code>{escape(d['key'])}</code>", escape(d["name_a"]), escape(d["name_b"]),
                             escape(", ".join(d["differs"])), _n(d["events_a"]), _n(d["events_b"]),
                             _n(d["events_only_in_a"]), _n(d["events_only_in_b"])] for d in v["differences"]],
                           numeric=(4, 5, 6, 7)))
        for side, other, key in (("A", "B", "only_in_a_listed"), ("B", "A", "only_in_b_listed")):
            if v[key]:
                o.append(f"<p><b>[{escape(s)}] only in {side}</b> ({len(v[key]):,} listed):</p>")
                o.append(table(["published file", "name", f"in {other}"],
                               [[f"<code>{escape(d['key'])}</code>", escape(d["name"]),
                                 escape(d[f"status_in_{other.lower()}"])] for d in v[key]]))
    return "\n".join(o)


def compare_page(c: dict) -> str:
    """compare.html: the comparison on a page of its own (no scripts, no network)."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>odg compare</title>'
            f"<style>{CSS}</style></head><body><main><h1>odg compare</h1>"
            f'<p class="sub">{escape(c["kind"])} · generated {escape(c["generated"])} · numbers in '
            f'<a href="compare.json">compare.json</a></p>{compare_section(c)}</main></body></html>')
