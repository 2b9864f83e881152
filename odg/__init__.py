"""odg kernels: pure functions on NumPy arrays (Numba-compiled), no I/O.

- `ODGParams`, `odg_events`, `odg_events_batch`: still images to ES-ImageNet events;
- `edge_integral`, `edge_integral_image`: events back to a grey relief map;
- `es_ucf101_events`: the ES-UCF101 video method;
- `odg.events`: the event record and its frame / published / bit-packed forms.
"""
from .events import (EVENT_DTYPE, events_to_frames, events_to_published, events_to_words, frames_to_events,
                     pack_frames, published_to_events, unpack_frames, word_dtype, words_to_events,
                     words_to_frames)
from .odg import ODGResult, check_image, nearest_indices, odg_events, odg_events_batch, odg_events_published
from .params import PUBLISHED_TRAJECTORY, ODGParams

__version__ = "0.1.0"
from .edge_integral import edge_integral, edge_integral_events, edge_integral_image
from .video import UCFParams, check_frames, clip_thresholds, es_ucf101_events, pack_clip, sample_indices, unpack_clip
