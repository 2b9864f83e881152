"""report.html: one self-contained page (inline CSS, no scripts, no network) whose figures are the
PNG files beside it, each linked to its SVG, referenced by relative path, so the folder opens
offline anywhere. The method, card, datasets, distributions and comparison sections live in
`sections`."""
from __future__ import annotations

from html import escape

from ..store.layout import unit_of

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:26px;margin:0 0 4px} h2{font-size:21px;margin:38px 0 8px;border-bottom:2px solid #e3e3e3;padding-bottom:4px}
h3{font-size:16px;margin:24px 0 6px} .sub{color:#666;margin:0 0 18px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}
th,td{padding:4px 10px;border-bottom:1px solid #e6e6e6;text-align:left;vertical-align:top}
th{background:#f3f5f8} td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:10px 0 22px} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:13px;margin-top:4px} .note{color:#666;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:10px 0 20px}
.card{background:#f3f5f8;border-radius:8px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:20px} .bad{color:#b22} .ok{color:#286} code{background:#f3f3f3;padding:1px 4px;border-radius:3px}
nav a{margin-right:14px}
"""


def _n(v, digits=0) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}" if digits or abs(v) >= 100 else f"{v:,.4g}"
    return f"{v:,}" if isinstance(v, int) else escape(str(v))


def _kb(v) -> str:
    return "—" if v is None else f"{v / 1e3:,.1f} kB"


def _size(v) -> str:
    if v is None:
        return "—"
    for unit, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= f:
            return f"{v / f:,.2f} {unit}"
    return f"{v:,.0f} B"


def table(headers, rows, numeric=()) -> str:
    h = "".join(f"<th>{escape(str(x))}</th>" for x in headers)
    body = []
    for r in rows:
        cells = []
        for k, x in enumerate(r):
            cls = ' class="n"' if k in numeric else ""
            cells.append(f"<td{cls}>{x}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def fig(src: str | None, alt: str, caption: str = "") -> str:
    """A figure: the PNG `src` on the page, its SVG (`plots.svg_path`) linked in the caption."""
    if not src:
        return ""
    from .plots import svg_path
    svg = f' <a class="svg" href="{escape(svg_path(src))}">SVG</a>'
    return (f'<figure><img src="{escape(src)}" alt="{escape(alt)}" loading="eager">'
            f"<figcaption>{caption}{svg}</figcaption></figure>")


def _cards(s: dict, steps: int) -> str:
    e = s["events_per_sample"]
    items = [("kept", _n(s["samples"]["kept"])), ("discarded", _n(s["samples"]["discarded"])),
             ("rejected", _n(s["samples"]["rejected"])), ("mean events", _n(e["mean"], 0)),
             ("median events", _n(e["median"], 0)), ("event rate", "—" if s["event_rate"] is None else f"{s['event_rate']:.4f}"),
             ("store / sample", _kb(s["bytes_per_sample"]["store"])),
             ("npz / sample", _kb(s["bytes_per_sample"]["published_npz"]))]
    return '<div class="cards">' + "".join(f'<div class="card"><b>{v}</b>{escape(k)}</div>' for k, v in items) + "</div>"


def _class_rows(entries):
    return [[str(e["label"]), escape(e["wnid"] or ""), escape(e["name"]), _n(e["kept"]), _n(e["mean_events"], 0)]
            for e in entries]


def split_section(name: str, s: dict, figs: dict, steps: int, discards: list, gallery_notes: dict,
                  unit: str = "step") -> str:
    from .sections import distributions_section
    o = [f'<h2 id="split-{escape(name)}">Split <code>{escape(name)}</code></h2>']
    smp = s["samples"]
    if not smp["complete"]:
        o.append(f'<p class="bad">Incomplete split: {smp["shards_counted"]} of {smp["shards"]} shards built; '
                 f'the figures cover those {smp["total"]:,} of {smp["planned"]:,} samples.</p>')
    o.append(_cards(s, steps))
    e = s["events_per_sample"]
    o.append("<h3>Events per sample</h3>")
    o.append(table(["kept samples", "mean", "median", "min", "max", "std", "event rate", "events in all"],
                   [[_n(smp["kept"]), _n(e["mean"], 1), _n(e["median"], 1), _n(e["min"]), _n(e["max"]), _n(e["std"], 1),
                     "—" if s["event_rate"] is None else f"{s['event_rate']:.5f}", _n(s["events_total"])]],
                   numeric=range(8)))
    o.append(fig(figs.get("hist"), f"{name} events per sample",
                 "Histogram of ON + OFF events per sample; the discard threshold, mean and median are marked. "
                 "Event rate = events / (224 · 224 · 8 · 2), the published definition, averaged over kept samples."))
    pol = s["events_per_polarity"]
    o.append("<h3>Time steps and polarity</h3>")
    o.append(table(["step t"] + [str(t + 1) for t in range(len(s["events_per_step"]))] + ["all"],
                   [["ON"] + [_n(v[0], 0) for v in s["events_per_step_polarity"]] + [_n(pol[0], 0)],
                    ["OFF"] + [_n(v[1], 0) for v in s["events_per_step_polarity"]] + [_n(pol[1], 0)],
                    ["both"] + [_n(v, 0) for v in s["events_per_step"]] + [_n(pol[0] + pol[1], 0)]],
                   numeric=range(1, len(s["events_per_step"]) + 2)))
    o.append('<p class="note">Mean events per kept sample.</p>')
    o.append(fig(figs.get("steps"), f"{name} events per step",
                 "Mean ON and OFF events per kept sample at each step; the spread of ON + OFF (p25-p75 box, p5-p95 "
                 "whisker); beside it, the trajectory whose steps make the events (where the method has one)."))
    pc = s["per_class"]
    o.append(f"<h3>Classes</h3><p>{pc['with_kept_samples']:,} of {pc['classes']:,} classes have kept samples.</p>")
    o.append(fig(figs.get("classes"), f"{name} class means",
                 "Mean events per kept sample of each class" + (": all classes ranked, and the extremes named."
                                                                  if pc["with_kept_samples"] > 2 * len(pc["highest"]) else ".")))
    o.append('<div style="display:flex;gap:28px;flex-wrap:wrap"><div><b>Highest</b>'
             + table(["class", "wnid", "name", "kept", "mean events"], _class_rows(pc["highest"]), numeric=(0, 3, 4))
             + "</div><div><b>Lowest</b>"
             + table(["class", "wnid", "name", "kept", "mean events"], _class_rows(pc["lowest"]), numeric=(0, 3, 4))
             + "</div></div>")
    d = s["density"]
    o.append("<h3>Where the events are</h3>")
    where = (f'x = {d["argmax_xy"]["x"]}, y = {d["argmax_xy"]["y"]}' if d["argmax_xy"] else
             f'window column {d["argmax"][1]}, row {d["argmax"][0]}')
    o.append(f'<p>Mean {d["mean"]:.4f} events per pixel per kept sample over the {escape(d["frame"])}; '
             f'busiest pixel {d["max"]:.3f} at {where}.</p>')
    o.append(fig(figs.get("density"), f"{name} spatial density",
                 "Axes as in the event record: x = column, y = row (ES-ImageNet: canvas coordinates)."))
    o.append(distributions_section(name, s, figs, unit))
    sh = s["shapes"]
    o.append("<h3>Resized shapes</h3>")
    o.append(f'<p>{sh["distinct"]:,} distinct (a, b) among kept samples: {sh["landscape"]:,} landscape, '
             f'{sh["portrait"]:,} portrait, {sh["square"]:,} square.</p>')
    o.append(table(["a", "b", "kept samples"], [[str(a), str(b), _n(c)] for a, b, c in sh["most_common"]], numeric=(0, 1, 2)))
    o.append(fig(figs.get("shapes"), f"{name} shapes"))
    o.append("<h3>Discards and rejects</h3>")
    if not s["discards_by_reason"] and not s["rejects_by_reason"]:
        o.append("<p>None: every sample was kept.</p>")
    else:
        rows = [["discarded", escape(k), _n(v)] for k, v in s["discards_by_reason"].items()] + \
               [["rejected", escape(k), _n(v)] for k, v in s["rejects_by_reason"].items()]
        o.append(table(["status", "reason", "samples"], rows, numeric=(2,)))
        o.append(fig(figs.get("reasons"), f"{name} reasons"))
    if s["rejects"]:
        o.append(f"<p><b>Rejected inputs</b> ({len(s['rejects']):,}):</p>")
        o.append(table(["index", "name", "reason"],
                       [[str(r["index"]), f"<code>{escape(r['name'])}</code>", escape(r["reason"])] for r in s["rejects"]],
                       numeric=(0,)))
    if discards:
        more = s["samples"]["discarded"] - len(discards)
        o.append(f"<p><b>Discarded samples</b> (too few events; {'all' if more <= 0 else f'the first {len(discards)}'} "
                 f"of {s['samples']['discarded']:,}):</p>")
        o.append(table(["index", "name", "reason"],
                       [[str(i), f"<code>{escape(n)}</code>", escape(r)] for i, n, r in discards], numeric=(0,)))
    b = s["bytes"]
    bp = s["bytes_per_sample"]
    o.append("<h3>Storage</h3>")
    o.append(table(["", "bytes in all", "per kept sample"],
                   [["this store (every array of the split)", _size(b["store"]), _kb(bp["store"])],
                    ["published npz layout", _size(b["published_npz"]), _kb(bp["published_npz"])],
                    ["store ÷ npz", "", "—" if bp["store_over_npz"] is None else f"{bp['store_over_npz']:.2f}"]],
                   numeric=(1, 2)))
    o.append(f'<p class="note">Published npz size measured with <code>np.savez_compressed</code> on '
             f'{escape(b["npz_method"])} ({b["npz_measured"]:,} measured).</p>')
    c = s["consistency"]
    ok = c["count_column_mismatches"] == 0 and c["stray_bits"] == 0
    o.append(f'<p class="{"ok" if ok else "bad"}">Words vs count column: {c["count_column_mismatches"]:,} samples '
             f'disagree, {c["stray_bits"]:,} stray bits.</p>')
    if "val_comparison" in s:
        o.append(val_section(s["val_comparison"]))
    if figs.get("ei") or figs.get("strips"):
        o.append("<h3>Samples</h3>")
        o.append(fig(figs.get("ei"), f"{name} Edge-Integral reconstructions",
                     "Edge-Integral reconstructions of evenly spaced kept samples, beside the source image framed "
                     f"as the loader frames the events. {escape(gallery_notes.get('ei', ''))}"))
        o.append(fig(figs.get("strips"), f"{name} frame strips", "A few samples as frames over time."))
    return "\n".join(o)


def val_section(c: dict) -> str:
    o = ["<h3>Compared with the published validation list</h3>"]
    o.append(f'<p class="note">Image by image against {escape(c["published_list"])}; only images present in this '
             "store are compared." + ("" if c["params_published"] else
                                      " <b>This store was built with non-published parameters</b>: differences are expected.")
             + "</p>")
    rows = [["images compared", _n(c["compared"])], ["not ILSVRC2012 validation names", _n(c["not_comparable"])],
            ["kept here / in the published list", f'{c["kept_here"]:,} / {c["kept_published"]:,}'],
            ["kept decision agrees", _n(c["kept_agree"])], ["kept decision disagrees", _n(c["kept_disagree"])],
            ["&nbsp;&nbsp;kept only here", _n(c["kept_only_here"])],
            ["&nbsp;&nbsp;kept only in the published list", _n(c["kept_only_published"])],
            ["kept by both", _n(c["both_kept"])], ["&nbsp;&nbsp;same resized shape (a, b)", _n(c["shape_agree"])],
            ["&nbsp;&nbsp;different shape", _n(c["shape_disagree"])], ["&nbsp;&nbsp;same label", _n(c["label_agree"])],
            ["&nbsp;&nbsp;different label", _n(c["label_disagree"])]]
    o.append(table(["", "images"], rows, numeric=(1,)))
    if c["disagreements"]:
        def fmt(x):
            return "—" if x is None else f"{x[0]} × {x[1]}"
        o.append(f"<p><b>Disagreements</b> ({c['disagreements_listed']:,} listed):</p>")
        o.append(table(["image", "differs in", "here: status", "here: shape", "here: label",
                        "published: kept", "published: shape", "published: label"],
                       [[f"<code>{escape(d['name'])}</code>", escape(", ".join(d["differs"])), d["here"]["status"],
                         fmt(d["here"]["shape"]), str(d["here"]["label"]), "yes" if d["published"]["kept"] else "no",
                         fmt(d["published"]["shape"]), _n(d["published"]["label"])] for d in c["disagreements"]]))
    else:
        o.append('<p class="ok">No disagreement.</p>')
    return "\n".join(o)


def page(stats: dict, figs: dict, discards: dict, notes: dict, overview_figs: dict) -> str:
    splits = stats["splits"]
    tot = stats["totals"]
    steps = stats["steps"]
    from . import sections
    title = f"{stats['kind']} statistics"
    unit = unit_of(stats["kind"])
    nav = " ".join(f'<a href="#split-{escape(s)}">{escape(s)}</a>' for s in splits)
    o = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
         f"<style>{CSS}</style></head><body><main>",
         f"<h1>{escape(title)}</h1>",
         f'<p class="sub">Store <code>{escape(stats["store"])}</code> · odg {escape(str(stats["odg_version"]))} · '
         f'{steps} time steps · generated {escape(stats["generated"])} · '
         f'numbers in <a href="stats.json">stats.json</a></p>',
         f'<nav>Splits: {nav} · <a href="#method">method</a> <a href="#card">card</a> '
         f'<a href="#published">published</a> <a href="#datasets">other datasets</a>'
         + (' <a href="#compare">comparison</a>' if "comparison" in stats else "") + "</nav>",
         "<h2>Overview</h2>"]
    rows = []
    for name, s in list(splits.items()) + [("all", tot)]:
        e = s["events_per_sample"]
        sm = s["samples"]
        rows.append([f"<b>{escape(name)}</b>", _n(sm["total"]), _n(sm["kept"]), _n(sm["discarded"]), _n(sm["rejected"]),
                     _n(e["mean"], 0), _n(e["median"], 0), _n(e["min"]), _n(e["max"]),
                     "—" if s["event_rate"] is None else f"{s['event_rate']:.4f}",
                     _kb(s["bytes_per_sample"]["store"]), _kb(s["bytes_per_sample"]["published_npz"])])
    o.append(table(["split", "samples", "kept", "discarded", "rejected", "mean events", "median", "min", "max",
                    "event rate", "store / sample", "npz / sample"], rows, numeric=range(1, 12)))
    o.append(fig(overview_figs.get("sizes"), "storage per sample",
                 "Bytes per kept sample: this store (all arrays of the split, including discards and rejects) "
                 "against the same samples written in the published npz layout."))
    o.append(fig(overview_figs.get("distributions"), "per-sample distributions, splits overlaid",
                 "Splits overlaid: events per sample, event rate and ON/OFF ratio (density histograms over kept "
                 "samples) and the events per step (mean, p25-p75 band)."))
    o.append(sections.method_section(stats["method"]))
    o.append(sections.card_section(stats["cards"]))
    o.append('<h2 id="published">Beside the published dataset</h2>')
    o.append(table(["quantity", "published", "this store", "note"],
                   [[escape(r["quantity"]), escape(r["published"]), escape(r["here"]), escape(r["note"])]
                    for r in stats["published"]]))
    o.append(sections.datasets_section(stats["other_datasets"]))
    if "comparison" in stats:
        o.append(sections.compare_section(stats["comparison"]))
    for name, s in splits.items():
        o.append(split_section(name, s, figs.get(name, {}), steps, discards.get(name, []), notes.get(name, {}), unit))
    o.append('<p class="note" style="margin-top:40px">Made by <code>odg stats</code>; every key is described in '
             "docs/STATS.md.</p></main></body></html>")
    return "\n".join(o)
