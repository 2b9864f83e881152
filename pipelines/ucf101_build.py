"""ES-UCF101 store builds: UCF101 clips -> an "es-ucf101" store split, on Dask (`odg.pipelines.build.run_build`).

    odg build ucf101 ROOT STORE --fold 1 --subset train [--frames DIR] [--dask-workers N]

Store layout for kind "es-ucf101" (see docs/STORE.md for the common arrays):

- split name: the subset followed by the split number, `train1`, `test1`, `all1`, `train2`, ...
  so the three official splits (and their train/test halves) can live side by side in one store;
  the split's `source` attrs repeat `split` (1-3) and `subset` explicitly;
- samples in `list_clips` order, `(label, clip name)`; `label` 0-based (classInd.txt index - 1);
  `number` the clip's 1-based rank within its class; `name` the clip stem
  (`v_ApplyEyeMakeup_g08_c01`, the published file name without `.npz`);
- `words`: the clip's events packed by `odg.video.pack_clip`, uint64 `[H, W]` (bit `2 s + c`);
  `shape` (H, W); `count` (ON, OFF);
- status: every clip that reads is KEPT (ES-UCF101 discards nothing); a clip that does not read
  (missing, unreadable, truncated, fewer than 2 frames, ...) is REJECTED with the reason from
  `odg.pipelines.errors.Reject`. DISCARDED is never used.

The payload `[H, W]` is fixed per split. Without `--size` it is the frame size of the split's
first readable clip (probed in the client, before any task runs: `probe_frame_size`); a clip of
another size is rejected ("frame size HxW differs from the split's HxW"). With `--size H W`
(`UCFParams.output_size`) every clip is resized to H x W and nothing is rejected for its size.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial

import numpy as np

from odg.video import UCFParams

from .errors import Reject
from .outcome import Outcome
from .ucf101 import MAX_FRAME_PIXELS

DEFAULT_SHARD_SIZE = 64          # 64 clips x 600 KB of words at 320 x 240: ~40 MB per task


def split_name(split: int, subset: str) -> str:
    """The store split of a UCF101 split/subset: `train1`, `test2`, `all3`."""
    return f"{subset}{split}"


@dataclass(frozen=True)
class UCFItem:
    """One clip as a build input (`run_build` needs `.name`, `.label`, `.number`).

    `video`/`frames`: the `.avi` path or frame folder as strings (None when absent)."""
    name: str
    label: int
    number: int
    video: str | None
    frames: str | None

    def clip(self):
        from pathlib import Path

        from .ucf101 import Clip
        return Clip(self.name, self.label, Path(self.video) if self.video else None,
                    Path(self.frames) if self.frames else None)


def ucf_items(root, split: int = 1, subset: str = "train", frames_root=None) -> tuple[list[UCFItem], list[str]]:
    """The split's clips as `UCFItem`s (store order) and the class names (position = label).

    Raises ValueError / FileNotFoundError for bad split files (unknown class names are named)."""
    from .ucf101 import find_split_dir, list_clips, read_class_index
    root = os.path.abspath(root)    # clips are opened by Dask workers, in their own working directory
    frames_root = None if frames_root is None else os.path.abspath(frames_root)
    clips = list_clips(root, split, subset, frames_root)
    classes = read_class_index(find_split_dir(root))
    items, last, n = [], None, 0
    for c in clips:
        n = n + 1 if c.label == last else 1
        last = c.label
        items.append(UCFItem(c.name, c.label, n, str(c.video_path) if c.video_path is not None else None,
                             str(c.frames_dir) if c.frames_dir is not None else None))
    return items, classes


def read_sampled(item: UCFItem, params: UCFParams, use_frames: bool, max_pixels: int = MAX_FRAME_PIXELS
                 ) -> np.ndarray:
    """The clip's sampled grey frames uint8 `[n_frames, H, W]` (no events), or raise Reject."""
    from .ucf101 import MAX_MISSING_FRAMES, read_frames_folder, read_video
    if use_frames:
        if item.frames is None:
            raise ValueError(f"clip {item.name} has no frame folder")
        return read_frames_folder(item.frames, params, max_pixels)[0]
    if item.video is None:
        raise ValueError(f"clip {item.name} has no video")
    return read_video(item.video, params, MAX_MISSING_FRAMES, max_pixels)[0]


def probe_frame_size(items, params: UCFParams, use_frames: bool, max_pixels: int = MAX_FRAME_PIXELS
                     ) -> tuple[tuple[int, int] | None, str, list]:
    """`((H, W), clip name, reasons)`: the event frame size of the first clip that reads (in
    store order), or `(None, "", reasons)` when none does; `reasons` are the `(name, why)` of the
    clips tried before it. With `params.output_size` that size is returned without reading."""
    if params.output_size is not None:
        return tuple(params.output_size), "", []
    tried = []
    for it in items:
        try:
            frames = read_sampled(it, params, use_frames, max_pixels)
        except (Reject, ValueError) as e:
            tried.append((it.name, str(e)))
            continue
        except OSError as e:
            tried.append((it.name, f"cannot read: {e}"))
            continue
        return (int(frames.shape[1]), int(frames.shape[2])), it.name, tried
    return None, "", tried


def size_reason(got, want) -> str:
    return (f"frame size {got[0]}x{got[1]} differs from the split's {want[0]}x{want[1]} (H x W); "
            "build with --size H W to resize every clip")


def convert_ucf_item(item: UCFItem, params: UCFParams, use_frames: bool, size: tuple,
                     max_pixels: int = MAX_FRAME_PIXELS) -> Outcome:
    """Convert one clip for `run_build`. Never raises for a bad clip: returns its outcome, kept
    (shape (H, W), count (ON, OFF), words uint64 `[H, W]`) or rejected (with the reason)."""
    from odg.video import pack_clip

    from .ucf101 import convert_clip
    try:
        events, info = convert_clip(item.clip(), params, use_frames, max_pixels=max_pixels)
    except (Reject, ValueError) as e:
        return Outcome.rejected(str(e))
    except OSError as e:
        return Outcome.rejected(f"cannot read: {e}")
    hw = tuple(int(v) for v in events.shape[2:])
    if hw != tuple(size):
        return Outcome.rejected(size_reason(hw, size))
    return Outcome.kept(hw, info["counts"], pack_clip(events))


def build_spec(url: str, root, split: int = 1, subset: str = "train", frames_root=None,
               params: UCFParams = UCFParams(), shard_size: int = DEFAULT_SHARD_SIZE, resume: bool = False,
               max_pixels: int = MAX_FRAME_PIXELS):
    """The `BuildSpec` of one UCF101 split/subset (for `run_build`). Raises ValueError /
    FileNotFoundError for bad inputs: split files (unknown class names are named), no clips, no
    readable clip. A resume keeps the existing split's frame size instead of probing again.
    `max_pixels`: clips with larger frames are rejected before decoding (`odg.pipelines.ucf101`)."""
    from .build import BuildSpec
    from .store.schema import KIND_UCF101
    use_frames = frames_root is not None
    items, classes = ucf_items(root, split, subset, frames_root)
    if not items:
        raise ValueError(f"split {split} has no {subset} clips in {root}")
    name = split_name(split, subset)
    size, probed, tried = None, "", []
    if resume:
        size = _existing_payload_shape(url, name)
    if size is None:
        size, probed, tried = probe_frame_size(items, params, use_frames, max_pixels)
        if size is None:
            why = "; ".join(f"{n}: {r}" for n, r in tried[:3])
            raise ValueError(f"none of the {len(items)} clips of {name} can be read, so the split has no frame "
                             f"size (first: {why})")
    source = {"layout": "ucf101", "path": os.path.abspath(str(root)), "split": split, "subset": subset,
              "input": "frames" if use_frames else "video",
              "frames": os.path.abspath(str(frames_root)) if use_frames else None,
              "clips": len(items), "frame_size": list(size),
              "frame_size_from": "--size" if params.output_size is not None else f"{probed} (first readable clip)"}
    return BuildSpec(url=url, split=name, kind=KIND_UCF101, items=items,
                     convert=partial(convert_ucf_item, params=params, use_frames=use_frames, size=tuple(size),
                                     max_pixels=max_pixels),
                     payload_shape=tuple(size), payload_dtype=np.uint64, params=params.to_dict(),
                     classes=[[k, c] for k, c in enumerate(classes)], source=source, shard_size=shard_size)


def _existing_payload_shape(url: str, split: str):
    """The payload shape of an existing split of the store (a resume keeps it), else None."""
    import zarr
    try:
        root = zarr.open_group(url, mode="r")
    except (FileNotFoundError, ValueError):
        return None
    if split not in root:
        return None
    payload = root[split].attrs.get("payload")
    return tuple(int(v) for v in payload["shape"]) if payload else None
