"""odg kernels: pure functions on NumPy arrays (Numba-compiled), no I/O.

- `ODGParams`, `odg_events`, `odg_events_batch`: still images to ES-ImageNet events;
- `edge_integral`, `edge_integral_image`: events back to a grey relief map;
- `es_ucf101_events`: the ES-UCF101 video method;
- `I2EParams`, `i2e_frames`, `i2e_events` (`odg.i2e`): the I2E method, with its published image
  preprocessing (`odg.resize`: torchvision's antialiased bilinear resize of uint8 images);
- `Augment` (`odg.augment`): seeded image augmentation before a conversion;
- `odg.bits`: the packed-word convention (bit `2 k + c`, c = 0 ON) every store keeps, with its
  pack/unpack and batch kernels; `odg.events`: the event record and its frame / published /
  bit-packed forms;
- `odg.framing`: a source image framed as the published loader frames its events;
- `to_tonic`: the event record as tonic's (`t` in microseconds, `p` bool).

Subpackages: `odg.pipelines` (sources, the store, Dask builds, statistics, the CLI) and
`odg.models` (torch networks, datasets, training). In the repository they are the top-level
folders `pipelines/` and `models/`; setuptools installs them under `odg/`.
"""
import os as _os

# A source checkout (the repository root first on sys.path, as `python -m pytest` puts it):
# `odg.pipelines` and `odg.models` are the folders beside this one. Installed, they live inside it.
_here = _os.path.dirname(_os.path.abspath(__file__))
_root = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "pipelines")) and all(
        _os.path.isfile(_os.path.join(_root, d, "__init__.py")) for d in ("pipelines", "models")):
    __path__.append(_root)  # noqa: F821 - the package's own search path
del _here, _root
from .events import (
    EVENT_DTYPE,
    events_to_frames,
    events_to_published,
    events_to_words,
    frames_to_events,
    pack_frames,
    published_to_events,
    unpack_frames,
    word_dtype,
    words_to_events,
    words_to_frames,
)
from .odg import ODGResult, check_image, nearest_indices, odg_events, odg_events_batch, odg_events_published
from .params import PUBLISHED_TRAJECTORY, ODGParams

__version__ = "0.1.0"
from .augment import Augment
from .edge_integral import edge_integral, edge_integral_events, edge_integral_image
from .i2e import I2EParams, i2e_events, i2e_frames
from .resize import resize_aa
from .tonic_events import STEP_US, TONIC_DTYPE, to_tonic
from .video import UCFParams, check_frames, clip_thresholds, es_ucf101_events, pack_clip, sample_indices, unpack_clip
