"""The odg event store (Zarr v3): schema, writer, reader, verification. See docs/STORE.md."""
from .integrity import DamagedShard, IncompleteSplit, NotBuilt
from .reader import EventStore, Sample, Shard, SplitReader, open_store
from .schema import DISCARDED, KEPT, KIND_I2E, KIND_IMAGENET, KIND_UCF101, NOT_BUILT, REJECTED, STATUS_NAMES
from .writer import SplitWriter, StoreError
