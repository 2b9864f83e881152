"""odg events as tonic's event records, so that tonic's transforms (`ToFrame`, `Denoise`, ...) apply.

`to_tonic(events, step_us=STEP_US)` maps an `odg.EVENT_DTYPE` array field by field to tonic's own
record (`tonic.io.events_struct`): `x`, `y` int16 unchanged, `p` bool (True = ON, odg's `p = 1`),
and `t` int64 microseconds, time step `k` (1..T) at `(k - 1) * step_us`. Every event of a step
shares that timestamp: the steps have no physical duration (an ODG step is one move of the
simulated saccade; an ES-UCF101 step the interval between two sampled frames), so the mapping
is a convention with one free unit, `step_us` (default 1000: one step per millisecond). The
output is sorted by `t` (stable, so odg's row-major order within a step is kept).

With tonic, one frame per step is `ToFrame(sensor_size, time_window=step_us, start_time=0,
end_time=T * step_us)`: frame `k - 1` holds step `k`, channel 0 the OFF events (`p = False`) and
channel 1 the ON events, i.e. odg's dense frames with the two channels swapped. `start_time` and
`end_time` are needed because tonic otherwise spans the first to the last timestamp, which
leaves out the last step (and shifts every frame when step 1 has no events). `n_time_bins=N`
slices that span, `(T - 1) * step_us` when steps 1 and T have events, into N bins of
`span // N` microseconds that do not line up with the steps; the last step's events lie at
the end of the span, outside every bin, and are dropped.
"""
from __future__ import annotations

import numpy as np

from .events import _check_events

# tonic's event record (`tonic.io.events_struct`, tonic 1.x), field for field
TONIC_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])

STEP_US = 1000


def to_tonic(events: np.ndarray, step_us: int = STEP_US) -> np.ndarray:
    """odg events (`odg.EVENT_DTYPE`) as a tonic structured array (`TONIC_DTYPE`), time-ordered.

    `x`, `y` are copied, `p` becomes bool (ON = True) and step `t` becomes `(t - 1) * step_us`
    microseconds (int64). Raises ValueError for another dtype, a step below 1 or
    `step_us < 1`.
    """
    _check_events(events)
    if int(step_us) != step_us or step_us < 1:
        raise ValueError(f"step_us must be a positive integer (microseconds per step), got {step_us!r}")
    if len(events) and events["t"].min() < 1:
        raise ValueError(f"odg time steps start at 1, got a step {int(events['t'].min())}")
    ev = events[np.argsort(events["t"], kind="stable")]
    out = np.empty(len(ev), TONIC_DTYPE)
    out["x"] = ev["x"]
    out["y"] = ev["y"]
    out["t"] = (ev["t"].astype(np.int64) - 1) * int(step_us)
    out["p"] = ev["p"] != 0
    return out
