"""The report's figures, as PNG files for the page and SVG files beside them (matplotlib).

The Agg backend is selected locally: every figure is a `matplotlib.figure.Figure` drawn on its own
`FigureCanvasAgg`, and the style lives in an `rc_context`; pyplot is never imported, so nothing
global (the backend of a notebook or of the caller) changes. `figure(path)` writes `path` (PNG)
and the same figure as SVG at `svg_path(path)`; artists with many points are rasterized in the SVG.
"""
from __future__ import annotations

import contextlib

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

ON, OFF, KEPT_C, DISC_C, REJ_C = "#d62728", "#1f77b4", "#4c72b0", "#dd8452", "#c44e52"
HI_C, LO_C = "#55a868", "#8172b2"
STYLE = {"font.size": 10, "axes.titlesize": 12, "axes.titleweight": "bold", "axes.labelsize": 10,
         "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
         "grid.linewidth": 0.6, "legend.frameon": False, "figure.dpi": 100, "savefig.dpi": 110,
         "figure.facecolor": "white", "svg.fonttype": "none"}     # SVG text stays text (editable in a paper)


def svg_path(path: str) -> str:
    """The SVG written beside the PNG `path`."""
    return path[:-4] + ".svg" if path.endswith(".png") else path + ".svg"


@contextlib.contextmanager
def figure(path: str, size=(8, 4.2)):
    """A styled figure, written to `path` (PNG) and `svg_path(path)` (SVG) on leaving the block."""
    with rc_context(STYLE):
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig
        fig.savefig(path, format="png")
        fig.set_layout_engine("none")           # the SVG keeps the layout the PNG computed (a third of its cost)
        fig.savefig(svg_path(path), format="svg")


def _thousands(ax, axis="x"):
    def f(v, _):
        v = float(v)
        if abs(v) >= 1e6:
            return f"{v / 1e6:g} M"
        if abs(v) >= 1e3:
            return f"{v / 1e3:g} k"
        return f"{v:g}"
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(FuncFormatter(f))


def events_histogram(path, split, s, min_events, steps):
    h = s["events_histogram"]
    w = h["bin_width"]
    left = np.asarray(h["edges"][:-1], float)
    kept, disc = np.asarray(h["kept"]), np.asarray(h["discarded"])
    e = s["events_per_sample"]
    with figure(path) as fig:
        ax = fig.add_subplot()
        ax.bar(left, kept, width=w, align="edge", color=KEPT_C, label=f"kept ({s['samples']['kept']:,})", linewidth=0)
        if disc.any():
            ax.bar(left, disc, width=w, bottom=kept, align="edge", color=DISC_C,
                   label=f"discarded ({s['samples']['discarded']:,})", linewidth=0)
        if min_events:
            ax.axvline(min_events, color="0.3", ls=":", lw=1.2, label=f"discard below {min_events:,} events")
        if e["mean"] is not None:
            ax.axvline(e["mean"], color="k", ls="--", lw=1.2, label=f"mean {e['mean']:,.0f}")
            ax.axvline(e["median"], color="k", ls="-", lw=1.2, label=f"median {e['median']:,.0f}")
        ax.set_xlim(0, left[-1] + w)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        _thousands(ax)
        ax.set_xlabel(f"events per sample (ON + OFF, all {steps} steps)")
        ax.set_ylabel("samples")
        ax.set_title(f"{split}: events per sample")
        ax.legend(loc="upper right")
    return path


def events_per_step(path, split, psp, spread, kind_label="step", trajectory=None):
    """Mean ON and OFF events per kept sample at each step, the spread of ON + OFF (p5-p95 whisker,
    p25-p75 box, from histogram bins of `spread["bin_width"]`) and, given a trajectory, the
    trajectory drawn beside it."""
    psp = np.asarray(psp, float)
    T = len(psp)
    x = np.arange(1, T + 1)
    with figure(path, (10.5, 3.9) if T <= 12 else (12.5, 3.9)) as fig:
        if trajectory is not None:
            ax, at = fig.subplots(1, 2, width_ratios=[3.2, 1])
        else:
            ax, at = fig.add_subplot(), None
        ax.bar(x - 0.2, psp[:, 0], width=0.4, color=ON, label=f"ON  (mean {psp[:, 0].sum():,.0f} per sample)")
        ax.bar(x + 0.2, psp[:, 1], width=0.4, color=OFF, label=f"OFF (mean {psp[:, 1].sum():,.0f} per sample)")
        top = max(1.0, psp.max())
        q = spread["q_bin_lo"]
        if q.get("median") is not None:
            half = spread["bin_width"] / 2
            lo5, lo25, lo75, lo95 = (np.asarray(q[k], float) + half for k in ("p5", "p25", "p75", "p95"))
            ax.vlines(x, lo5, lo95, color="0.25", lw=1)
            ax.vlines(x, lo25, lo75, color="0.25", lw=5, label="ON + OFF: p25-p75 (box), p5-p95")
            ax.plot(x, spread["mean"], "D", color="k", ms=4, label="ON + OFF: mean")
            top = max(top, float(lo95.max()))
        ax.set_xticks(x)
        ax.set_xlabel(f"time {kind_label} t")
        ax.set_ylabel("events per kept sample")
        _thousands(ax, "y")
        ax.set_title(f"{split}: events per time {kind_label} and polarity")
        ax.legend(loc="upper center", ncols=2, fontsize=8)
        ax.set_ylim(0, top * 1.35)
        if at is not None:
            trajectory_axes(at, trajectory)
    return path


def trajectory_axes(ax, trajectory):
    """The ODG trajectory: canvas offsets (row, col) of steps t = 0..T, arrows in order."""
    tr = np.asarray(trajectory, float)
    r, c = tr[:, 0], tr[:, 1]
    ax.plot(c, r, color="0.75", lw=0.8, zorder=1)
    for t in range(1, len(tr)):
        ax.annotate("", xy=(c[t], r[t]), xytext=(c[t - 1], r[t - 1]),
                    arrowprops={"arrowstyle": "->", "color": "#4c72b0", "lw": 1.2, "shrinkA": 4, "shrinkB": 4})
    seen: dict = {}
    for t in range(len(tr)):
        k = (c[t], r[t])
        seen[k] = seen.get(k, []) + [str(t)]
    for (cc, rr), ts in seen.items():
        ax.scatter([cc], [rr], s=30, color="k", zorder=3)
        ax.text(cc + 0.08, rr - 0.08, ",".join(ts), fontsize=8, color="#b22")
    ax.set_xlim(c.min() - 0.6, c.max() + 0.8)
    ax.set_ylim(r.max() + 0.6, r.min() - 0.6)
    ax.set_xticks(np.arange(c.min(), c.max() + 1))
    ax.set_yticks(np.arange(r.min(), r.max() + 1))
    ax.set_aspect("equal")
    ax.set_xlabel("column offset")
    ax.set_ylabel("row offset")
    ax.set_title("trajectory (t = 0..T)", fontsize=10)


def class_means(path, split, pc):
    means = np.array([m for m in pc["mean_events"] if m is not None], float)
    hi, lo = pc["highest"], pc["lowest"]
    few = len(means) <= 2 * len(hi)
    # bottom to top: lowest ... highest (barh draws y = 0 at the bottom)
    named = lo if few else lo + hi[::-1]

    def lab(e):
        return f"{e['name'][:30]} ({e['wnid']})" if e["wnid"] else e["name"][:40]
    with figure(path, (11 if not few else 8, max(3.2, 0.27 * len(named) + 1.4))) as fig:
        if few:
            a2 = fig.add_subplot()
        else:
            a1, a2 = fig.subplots(1, 2, width_ratios=[1, 1.25])
            srt = np.sort(means)[::-1]
            a1.fill_between(np.arange(1, len(srt) + 1), srt, color=KEPT_C, alpha=0.25, lw=0)
            a1.plot(np.arange(1, len(srt) + 1), srt, color=KEPT_C)
            a1.axhline(srt.mean(), color="k", ls="--", lw=1, label=f"mean of the classes: {srt.mean():,.0f}")
            a1.legend(loc="upper right")
            a1.set_xlim(1, len(srt))
            a1.set_ylim(0, srt.max() * 1.08)
            a1.xaxis.set_major_locator(MaxNLocator(integer=True))
            a1.set_xlabel("class rank (highest first)")
            a1.set_ylabel("mean events per kept sample")
            _thousands(a1, "y")
            a1.set_title(f"{split}: {len(srt):,} classes ranked by mean events")
        hi_set = set() if few else {e["label"] for e in hi}
        vals = [e["mean_events"] for e in named]
        cols = [HI_C if e["label"] in hi_set else LO_C for e in named]
        y = np.arange(len(named))
        a2.barh(y, vals, color=cols if not few else KEPT_C)
        a2.set_yticks(y, [lab(e) for e in named], fontsize=8)
        for yy, v in zip(y, vals):
            a2.text(v, yy, f" {v:,.0f}", va="center", fontsize=7, color="0.3")
        if not few:
            a2.axhline(len(lo) - 0.5, color="0.6", lw=0.8, ls=":")
        a2.set_xlim(0, max(vals) * 1.15)
        a2.set_xlabel("mean events per kept sample")
        _thousands(a2)
        a2.grid(axis="y", visible=False)
        a2.set_title(f"the {len(hi)} highest (green) and {len(lo)} lowest (purple) classes" if not few
                     else f"{split}: mean events per kept sample, by class")
    return path


def density(path, split, dens, origin, frame_note):
    """Mean events per kept sample at each pixel; axes in the event record's coordinates (x = column,
    y = row) from `origin` ({x, y} of pixel [0, 0]; None: window coordinates)."""
    H, W = dens.shape
    x0, y0 = (origin["x"], origin["y"]) if origin else (0, 0)
    where = "canvas" if origin and (x0 or y0) else "frame" if origin else "window"
    with figure(path, (6.4, 5.4)) as fig:
        ax = fig.add_subplot()
        im = ax.imshow(dens, cmap="magma", interpolation="nearest",
                       extent=(x0 - 0.5, x0 + W - 0.5, y0 + H - 0.5, y0 - 0.5))
        cb = fig.colorbar(im, ax=ax, shrink=0.85)
        cb.set_label("events per kept sample at the pixel (mean)")
        ax.set_xlabel(f"x (column, {where})")
        ax.set_ylabel(f"y (row, {where})")
        ax.grid(False)
        ax.set_title(f"{split}: where the events are")
        ax.text(0.0, -0.13, frame_note, transform=ax.transAxes, fontsize=8, color="0.35")
    return path


def shapes(path, split, counter, long_side=None, clip=False):
    items = sorted(counter.items())
    a = np.array([k[0] for k, _ in items])
    b = np.array([k[1] for k, _ in items])
    n = np.array([v for _, v in items], float)
    with figure(path, (11, 4)) as fig:
        a1, a2 = fig.subplots(1, 2)
        if len(n):
            a1.scatter(b, a, s=12 + 140 * np.sqrt(n / n.max()), c=KEPT_C, alpha=0.55, edgecolors="none")
        a1.set_xlabel("clip width W (pixels)" if clip else "resized width b (pixels)")
        a1.set_ylabel("clip height H (pixels)" if clip else "resized height a (pixels)")
        a1.set_title(f"{split}: {'clip sizes (H, W)' if clip else 'resized shapes (a, b)'}, area ∝ √count")
        if len(n):
            lo, hi = min(a.min(), b.min()) - 12, max(a.max(), b.max()) + 12
            a1.set_xlim(lo, hi)
            a1.set_ylim(lo, hi)
        a1.set_aspect("equal", adjustable="box")
        short = np.minimum(a, b)
        groups = [("landscape (a < b)", a < b, "#4c72b0"), ("portrait (a > b)", a > b, "#dd8452"),
                  ("square", a == b, "#55a868")]
        lo, hi = (int(short.min()), int(short.max())) if len(short) else (0, 1)
        bins = np.arange(lo, hi + 2, max(1, (hi - lo + 1) // 40 or 1))
        bottom = np.zeros(len(bins) - 1)
        for lab, m, col in groups:
            h, _ = np.histogram(short[m], bins=bins, weights=n[m])
            if h.any():
                a2.bar(bins[:-1], h, width=np.diff(bins), bottom=bottom, align="edge", color=col,
                       label=f"{lab}: {int(n[m].sum()):,}", linewidth=0)
                bottom += h
        a2.set_xlabel("short side (pixels)" + (f"; the long side is {long_side}" if long_side else ""))
        a2.set_ylabel("kept samples")
        a2.yaxis.set_major_locator(MaxNLocator(integer=True))
        a2.xaxis.set_major_locator(MaxNLocator(integer=True))
        a2.set_ylim(0, max(1, bottom.max()) * 1.12)
        a2.set_title("short side by orientation")
        a2.legend(loc="best")
    return path


def reasons(path, split, discards: dict, rejects: dict):
    rows = [(f"discarded: {k}", v, DISC_C) for k, v in discards.items()] + \
           [(f"rejected: {k}", v, REJ_C) for k, v in rejects.items()]
    with figure(path, (9, 0.45 * len(rows) + 1.4)) as fig:
        ax = fig.add_subplot()
        y = np.arange(len(rows))[::-1]
        ax.barh(y, [r[1] for r in rows], color=[r[2] for r in rows])
        ax.set_yticks(y, [r[0] if len(r[0]) < 70 else r[0][:67] + "…" for r in rows], fontsize=9)
        for yy, r in zip(y, rows):
            ax.text(r[1], yy, f" {r[1]:,}", va="center", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("samples")
        ax.grid(axis="y", visible=False)
        ax.set_title(f"{split}: discards and rejects by reason")
    return path


def sizes(path, rows):
    """rows: (label, store bytes per kept sample, published npz bytes per kept sample)."""
    with figure(path, (7, 3.6)) as fig:
        ax = fig.add_subplot()
        x = np.arange(len(rows))
        st = [r[1] or 0 for r in rows]
        nz = [r[2] or 0 for r in rows]
        b1 = ax.bar(x - 0.2, np.array(st) / 1e3, width=0.4, color="#4c72b0", label="this store (Zarr, bit-packed)")
        b2 = ax.bar(x + 0.2, np.array(nz) / 1e3, width=0.4, color="#937860", label="published layout (npz)")
        for bars in (b1, b2):
            ax.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
        ax.set_xticks(x, [r[0] for r in rows])
        ax.set_ylabel("kB per kept sample")
        ax.set_title("storage per kept sample")
        ax.legend(loc="upper left")
        ax.set_ylim(0, max(st + nz + [1]) / 1e3 * 1.25)
    return path


def _short(name, n=30):
    name = name.rsplit("/", 1)[-1]
    return name if len(name) <= n else name[:n - 1] + "…"


def edge_integral_grid(path, items, per_row=3):
    with_src = any(it["source"] is not None for it in items)
    cols = per_row * (2 if with_src else 1)
    nrows = -(-len(items) // per_row)
    with figure(path, (2.3 * cols, 2.6 * nrows + 0.3)) as fig:
        axes = np.atleast_2d(fig.subplots(nrows, cols, squeeze=False))
        for ax in axes.flat:
            ax.set_axis_off()
        for k, it in enumerate(items):
            r, c = divmod(k, per_row)
            c *= 2 if with_src else 1
            if with_src:
                ax = axes[r, c]
                if it["source"] is not None:
                    ax.imshow(it["source"], interpolation="antialiased")
                    ax.set_title(f"{it['class'][:30]}\n{_short(it['name'])}", fontsize=8)
                else:
                    ax.text(0.5, 0.5, "source\nnot reachable", ha="center", va="center", fontsize=8, color="0.4")
                c += 1
            ax = axes[r, c]
            ax.imshow(it["ei"], cmap="gray", vmin=0, vmax=255, interpolation="antialiased")
            ax.set_title((f"{it['class'][:30]}\n" if not with_src else "\n") + f"Edge-Integral, {it['events']:,} events",
                         fontsize=8)
        fig.suptitle("Edge-Integral reconstructions (the published loader's 224 × 224 view)", fontweight="bold")
    return path


def _colour(fr_on, fr_off):
    """ON red, OFF blue, both purple, on white."""
    on, off = fr_on.astype(bool), fr_off.astype(bool)
    img = np.full(on.shape + (3,), 255, np.uint8)
    img[on] = (214, 39, 40)
    img[off] = (31, 119, 180)
    img[on & off] = (120, 40, 160)
    return img


def frame_strips(path, items, unit="step"):
    steps = max(len(it["steps"]) for it in items)
    h, w = items[0]["frames"].shape[-2:]
    with figure(path, (1.9 * steps, (1.9 * h / w + 0.55) * len(items) + 0.5)) as fig:
        axes = fig.subplots(len(items), steps, squeeze=False)
        for r, it in enumerate(items):
            for c in range(steps):
                ax = axes[r, c]
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for sp in ax.spines.values():
                    sp.set_visible(True)
                    sp.set_color("0.8")
                if c >= len(it["steps"]):
                    ax.set_axis_off()
                    continue
                f = it["frames"][c]
                ax.imshow(_colour(f[0], f[1]), interpolation="antialiased")
                n_on, n_off = int(f[0].sum()), int(f[1].sum())
                ax.set_xlabel(f"+{n_on:,} / −{n_off:,}", fontsize=7)
                ax.set_title(f"t = {it['steps'][c]}", fontsize=9)
                if c == 0:
                    ax.set_ylabel(f"{it['class'][:24]}\n{_short(it['name'], 24)}", fontsize=8)
        fig.suptitle(f"events per time {unit}: ON red, OFF blue, both purple (counts: +ON / −OFF)",
                     fontweight="bold")
    return path


def class_balance(path, split, pc):
    """Histogram of class sizes (kept samples per class) and the classes losing most to the floor."""
    cs = pc["class_sizes"]
    h = cs["histogram"]
    worst = pc["most_discarded"]
    with figure(path, (11, max(3.6, 0.3 * len(worst) + 1.6)) if worst else (7, 3.6)) as fig:
        if worst:
            a1, a2 = fig.subplots(1, 2, width_ratios=[1, 1.2])
        else:
            a1, a2 = fig.add_subplot(), None
        left = np.asarray(h["edges"][:-1], float)
        a1.bar(left, h["classes"], width=h["bin_width"], align="edge", color=KEPT_C, linewidth=0)
        if cs["mean"] is not None:
            a1.axvline(cs["mean"], color="k", ls="--", lw=1, label=f"mean {cs['mean']:,.1f}")
            a1.axvline(cs["median"], color="k", lw=1, label=f"median {cs['median']:,.1f}")
            a1.legend(loc="upper left")
        a1.set_xlabel("kept samples in the class")
        a1.set_ylabel("classes")
        a1.yaxis.set_major_locator(MaxNLocator(integer=True))
        a1.set_title(f"{split}: class sizes ({pc['classes_present']:,} classes)")
        if a2 is not None:
            y = np.arange(len(worst))[::-1]
            k = np.array([e["kept"] for e in worst])
            d = np.array([e["discarded"] for e in worst])
            a2.barh(y, k, color=KEPT_C, label="kept")
            a2.barh(y, d, left=k, color=DISC_C, label="discarded (under the floor)")
            a2.set_yticks(y, [f"{e['name'][:26]} ({e['wnid']})" if e["wnid"] else e["name"][:34] for e in worst],
                          fontsize=8)
            for yy, e, kk, dd in zip(y, worst, k, d):
                a2.text(kk + dd, yy, f" {100 * e['discard_fraction']:.1f} %", va="center", fontsize=7)
            a2.set_xlim(0, max(1, (k + d).max()) * 1.2)
            a2.xaxis.set_major_locator(MaxNLocator(integer=True))
            a2.set_xlabel("samples")
            a2.grid(axis="y", visible=False)
            a2.legend(loc="lower right", fontsize=8)
            a2.set_title("classes losing most to the event floor")
    return path


def events_vs_shape(path, split, totals, shapes, evs, clip=False):
    """Events per kept sample against the short side of its resized shape (ES-UCF101: the clip)."""
    short = np.minimum(shapes[:, 0], shapes[:, 1])
    with figure(path, (8, 4)) as fig:
        ax = fig.add_subplot()
        ax.scatter(short, totals, s=6 if len(totals) > 2000 else 14, alpha=0.35 if len(totals) > 2000 else 0.7,
                   color=KEPT_C, edgecolors="none", rasterized=True, label="kept samples")
        g = evs["by_short_side"]
        if g:
            mid = [(e["short_side"][0] + e["short_side"][1]) / 2 for e in g]
            ax.errorbar(mid, [e["mean_events"] for e in g], yerr=[e["std_events"] for e in g], color="k", marker="o",
                        ms=4, lw=1.2, capsize=3, label=f"mean ± std per {evs['short_side_bin']} px of short side")
        r = evs["pearson_events_area"]
        ax.set_xlabel("short side of the clip (pixels)" if clip else "short side of the resized image (pixels)")
        ax.set_ylabel("events per sample")
        _thousands(ax, "y")
        ax.set_title(f"{split}: events against the {'clip size' if clip else 'resized shape'}"
                     + ("" if r is None else f" (Pearson r with a·b: {r:.2f})"))
        ax.legend(loc="best", fontsize=8)
    return path


def distributions(path, series: dict, kind_label="step"):
    """Splits overlaid (one colour each): events per sample, event rate and ON/OFF ratio as density
    histograms, and the events per step (mean, p25-p75 band). `series`: split -> arrays."""
    cols = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b2", "#937860"]
    with figure(path, (11, 7)) as fig:
        axes = fig.subplots(2, 2)
        panels = [("kept_totals", "events per sample (ON + OFF)", axes[0, 0]),
                  ("rates", "event rate (events / dense volume)", axes[0, 1]),
                  ("on_off_ratio", "ON / OFF events of a sample", axes[1, 0])]
        for key, label, ax in panels:
            vals = [np.asarray(v[key], float) for v in series.values() if len(v[key])]
            if not vals:
                ax.set_axis_off()
                continue
            lo, hi = min(v.min() for v in vals), max(v.max() for v in vals)
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 41)
            for (name, v), col in zip(series.items(), cols):
                if len(v[key]):
                    ax.hist(v[key], bins=bins, density=True, histtype="step", lw=1.6, color=col,
                            label=f"{name} ({len(v[key]):,})")
            ax.set_xlabel(label)
            ax.set_ylabel("density")
            ax.legend(fontsize=8)
        ax = axes[1, 1]
        for (name, v), col in zip(series.items(), cols):
            sp = v["step_spread"]
            if sp["q_bin_lo"].get("median") is None:
                continue
            t = np.arange(1, len(sp["mean"]) + 1)
            half = sp["bin_width"] / 2
            ax.fill_between(t, np.asarray(sp["q_bin_lo"]["p25"]) + half, np.asarray(sp["q_bin_lo"]["p75"]) + half,
                            color=col, alpha=0.2, lw=0)
            ax.plot(t, sp["mean"], "-o", color=col, ms=3, label=f"{name}: mean, p25-p75")
        ax.set_xlabel(f"time {kind_label} t")
        ax.set_ylabel("events per kept sample")
        _thousands(ax, "y")
        ax.legend(fontsize=8)
        fig.suptitle("splits overlaid: per-sample distributions", fontweight="bold")
    return path
