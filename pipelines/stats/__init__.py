"""Statistics of an odg store: `odg stats STORE --out DIR` and `write_report`.

- `compute`: one Dask task per shard returning small partial sums, merged on the client;
- `published`: the published datasets' figures and the image-by-image validation comparison;
- `gallery`: the samples shown (Edge-Integral reconstructions, frame strips);
- `plots`: the PNG figures (matplotlib, Agg, no global state); `html`: report.html;
- `report`: `write_report`, which ties them together. stats.json is described in docs/STATS.md.
"""
from .report import write_report

__all__ = ["write_report", "compute_stats"]


def compute_stats(*args, **kw):
    """See `odg.pipelines.stats.compute.compute_stats`."""
    from .compute import compute_stats as f
    return f(*args, **kw)
