"""What converting one input gave: the contract between every converter and its callers.

Every converter (ImageNet with ODG or I2E, UCF101 clips, the importers of the published files, the
on-the-fly datasets, `odg convert`) turns one `SourceItem` into one `Outcome`:

- kept:      the sample's events, as `words` (the store's packed payload), `shape` (the resized
             image's (a, b), a clip's (H, W), an I2E frame's (S, S)) and `count` (ON, OFF) events;
- discarded: converted, but under the method's event floor (ODG); words, shape and count are kept
             for the statistics, the `reason` says why (e.g. "812 events < 1000");
- rejected:  not converted at all (unreadable, undecodable, refused); only the `reason`.

A converter that puts the events elsewhere itself (the on-the-fly datasets write them into their
batch, `odg convert` into its `.npz` files) may leave `words` (and `count`, `shape`) None.

A build never raises for a bad input: it records the `Outcome`. The status codes are the store's
(`store.schema.KEPT`, `DISCARDED`, `REJECTED`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .store.schema import DISCARDED, KEPT, REJECTED, STATUS_NAMES


@runtime_checkable
class SourceItem(Protocol):
    """One input of a split: `name` (its path relative to the source, as the store records it),
    `label` (0-based class, -1 unknown) and `number` (the published running number, 1-based within
    its class)."""
    name: str
    label: int
    number: int


@dataclass(frozen=True)
class Outcome:
    """One input's conversion: `status` (KEPT / DISCARDED / REJECTED), `reason` ('' when kept),
    and for converted inputs `shape` (2 ints), `count` (ON, OFF) and `words` (payload array)."""
    status: int
    reason: str = ""
    shape: tuple | None = None
    count: tuple | None = None
    words: np.ndarray | None = None

    @classmethod
    def kept(cls, shape=None, count=None, words=None) -> Outcome:
        """A kept sample: its `shape`, `count` (ON, OFF) and `words` (None where placed elsewhere)."""
        return cls(KEPT, "", _pair(shape), _pair(count), words)

    @classmethod
    def discarded(cls, reason: str, shape, count, words=None) -> Outcome:
        """A sample under the event floor: why (`reason`), its `shape`, `count` and `words`."""
        if not reason:
            raise ValueError("a discard needs its reason")
        return cls(DISCARDED, reason, _pair(shape), _pair(count), words)

    @classmethod
    def rejected(cls, reason: str) -> Outcome:
        """A rejection; an empty `reason` (an exception without a message) is recorded as such, so that
        one odd input never fails its shard."""
        return cls(REJECTED, reason or "rejected (the conversion gave no reason)")

    @property
    def converted(self) -> bool:
        """Whether there are events (kept or discarded): `shape`, `count`, `words` describe them."""
        return self.status != REJECTED

    @property
    def status_name(self) -> str:
        """"kept", "discarded" or "rejected" (`store.schema.STATUS_NAMES`)."""
        return STATUS_NAMES[self.status]


def _pair(v) -> tuple | None:
    """Two ints (a shape, an (ON, OFF) count) as a tuple of Python ints; None stays None."""
    return None if v is None else tuple(int(x) for x in v)
