"""UCF101 input for ES-UCF101: the train/test split lists, frame folders and streamed `.avi` decoding.

Layout (as UCF101 ships it, and as `odg build ucf101 ROOT ...` expects):

    ROOT/ucfTrainTestlist/classInd.txt        "1 ApplyEyeMakeup" ... (1-based class indices)
    ROOT/ucfTrainTestlist/trainlist0N.txt     "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1" (label optional)
    ROOT/ucfTrainTestlist/testlist0N.txt      "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
    ROOT/UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi

and, for `--frames DIR` (the common "jpegs_256" extraction the published dataset was built from),
`DIR/v_ApplyEyeMakeup_g08_c01/frame000001.jpg ...`: frames are ordered by the number in their file
name (`frame10` after `frame9`), never by directory listing order.

`list_clips` returns `Clip` records sorted by `(label, name)`; labels are 0-based (classInd's index
minus 1). A clip's class is the folder part of its list line (UCF101 spells some file names
differently, e.g. `HandstandPushups/v_HandStandPushups_g01_c01.avi`).

`convert_clip` turns one clip into its events (`odg.video.es_ucf101_events`) or raises `Reject`
(from `odg.pipelines.errors`) saying why: missing or unreadable video, truncated video, fewer than 2
frames, missing frame folder, unreadable frame JPEG, frames of different sizes.

Video decoding is streamed with `cv2.VideoCapture` and keeps only the sampled frames (grey, via
`cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)`); other frames are only `grab()`bed. The frame count the
container reports (`CAP_PROP_FRAME_COUNT`) is only trusted once the decoder agrees with it:

1. sample with the reported count `N` and decode up to the last sampled frame (`N - 1`), then try
   one more frame. If frame `N - 1` decoded and no frame follows, `N` was right: done, one pass.
2. Otherwise the same pass has counted the frames the decoder really gives, `n` (it keeps
   grabbing to the end when `N` was too low; it stopped at `n` when `N` was too high). A reported
   count more than `max_missing_frames` above `n` is a truncated file: `Reject`. Else the clip is
   sampled again with `n` and decoded a second time, keeping only the new sampled frames; that
   pass must reach frame `n - 1` and end there, or the decoder is inconsistent: `Reject`.

When `N` is unknown (< 2) step 1 is a pure counting pass. Memory is `n_frames` grey frames
whatever the video's length.

Frame size limit: a clip whose frames have more than `max_pixels` pixels (default
`MAX_FRAME_PIXELS`, 2 Mi: 1920 x 1080 fits; UCF101's are 320 x 240) is rejected before any frame
is decoded: from each sampled frame file's header (`odg.pipelines.image_header`), or from the
frame size the video container reports (a container that reports none is rejected too). A
clip's conversion holds about 100 bytes per frame pixel (31 grey frames, the events, the words),
so the default keeps one clip under about 210 MB.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from odg.video import UCFParams, es_ucf101_events, sample_indices

from .decode import read_image
from .errors import Reject

SUBSETS = ("train", "test", "all")
SPLITS = (1, 2, 3)
MAX_MISSING_FRAMES = 2
MAX_FRAME_PIXELS = 1 << 21


@dataclass(frozen=True)
class Clip:
    """One UCF101 clip.

    - `name`: the clip's stem, `v_ApplyEyeMakeup_g08_c01` (the published output file's name);
    - `label`: 0-based class index (classInd's index minus 1);
    - `video_path`: `Path` of the `.avi`, or None when no video folder was given;
    - `frames_dir`: `Path` of its frame folder (`FRAMES/<name>`), or None without `--frames`.
    """
    name: str
    label: int
    video_path: Path | None
    frames_dir: Path | None


# -- split lists ----------------------------------------------------------------------------

def _lines(path: Path):
    """(line number, stripped text) of the non-empty lines; tolerates a BOM and CRLF endings."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: UCF101 split file not found") from None
    for no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line:
            yield no, line


def find_split_dir(root) -> Path:
    """The folder holding `classInd.txt`: `root/ucfTrainTestlist` or `root` itself."""
    root = Path(root)
    for cand in (root / "ucfTrainTestlist", root):
        if (cand / "classInd.txt").is_file():
            return cand
    raise FileNotFoundError(f"no classInd.txt in {root} or {root / 'ucfTrainTestlist'} "
                            "(expected UCF101's ucfTrainTestlist folder)")


def find_video_dir(root) -> Path:
    """The folder holding the class folders of `.avi` files: `root/UCF-101` if present, else `root`."""
    root = Path(root)
    return root / "UCF-101" if (root / "UCF-101").is_dir() else root


def read_class_index(split_dir) -> list[str]:
    """Class names from `classInd.txt`, position = 0-based label. Indices must be exactly 1..N."""
    path = Path(split_dir) / "classInd.txt"
    by_index: dict[int, str] = {}
    for no, line in _lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{path}:{no}: expected '<index> <ClassName>', got {line!r}")
        idx, name = int(parts[0]), parts[1]
        if idx in by_index:
            raise ValueError(f"{path}:{no}: class index {idx} listed twice")
        by_index[idx] = name
    if not by_index:
        raise ValueError(f"{path}: no classes listed")
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        raise ValueError(f"{path}: class indices must be 1..{len(by_index)} (1-based, each once), "
                         f"got {sorted(by_index)[:5]}...")
    names = [by_index[i] for i in range(1, len(by_index) + 1)]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"{path}: class names listed twice: {dups}")
    return names


def read_split(split_dir, split: int = 1, subset: str = "train") -> list[tuple[str, int]]:
    """`(relative path "Class/v_....avi", 0-based label)` of a split's clips, in file order.

    `split` is 1, 2 or 3; `subset` "train" (`trainlist0N.txt`), "test" (`testlist0N.txt`) or "all"
    (both). A label given on a line (1-based) must agree with the class folder. Class names missing
    from `classInd.txt` raise ValueError naming them; so does a clip listed twice.
    """
    if split not in SPLITS or isinstance(split, bool):
        raise ValueError(f"split must be 1, 2 or 3, got {split!r}")
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    split_dir = Path(split_dir)
    classes = read_class_index(split_dir)
    label_of = {name: i for i, name in enumerate(classes)}
    files = {"train": [f"trainlist0{split}.txt"], "test": [f"testlist0{split}.txt"],
             "all": [f"trainlist0{split}.txt", f"testlist0{split}.txt"]}[subset]
    out: list[tuple[str, int]] = []
    seen: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for fname in files:
        path = split_dir / fname
        for no, line in _lines(path):
            parts = line.split()
            if len(parts) > 2:
                raise ValueError(f"{path}:{no}: expected 'Class/clip.avi [label]', got {line!r}")
            rel = parts[0].replace("\\", "/")
            pieces = rel.split("/")
            if len(pieces) != 2 or not pieces[0] or not pieces[1]:
                raise ValueError(f"{path}:{no}: expected 'Class/clip.avi', got {parts[0]!r}")
            cls = pieces[0]
            if cls not in label_of:
                unknown.setdefault(cls, f"{path.name}:{no}")
                continue
            label = label_of[cls]
            if len(parts) == 2:
                if not parts[1].isdigit():
                    raise ValueError(f"{path}:{no}: label must be a 1-based class index, got {parts[1]!r}")
                if int(parts[1]) - 1 != label:
                    raise ValueError(f"{path}:{no}: label {parts[1]} disagrees with class {cls!r} "
                                     f"(index {label + 1} in classInd.txt)")
            if rel in seen:
                raise ValueError(f"{path}:{no}: {rel} already listed ({seen[rel]})")
            seen[rel] = f"{path.name}:{no}"
            out.append((rel, label))
    if unknown:
        where = ", ".join(f"{c} ({w})" for c, w in sorted(unknown.items()))
        raise ValueError(f"class names not in {split_dir / 'classInd.txt'}: {where}")
    return out


def list_clips(root=None, split: int = 1, subset: str = "train", frames_root=None, *,
               split_dir=None, video_dir=None) -> list[Clip]:
    """The clips of a split as `Clip` records sorted by `(label, name)`.

    `root` is a UCF101 folder (`find_split_dir`, `find_video_dir` locate `ucfTrainTestlist/` and
    `UCF-101/` in it); `split_dir`/`video_dir` override either. With `frames_root` each clip's
    `frames_dir` is `frames_root/<name>` (checked only when converted).
    """
    if root is None and (split_dir is None or (video_dir is None and frames_root is None)):
        raise ValueError("give root, or split_dir with video_dir and/or frames_root")
    sdir = Path(split_dir) if split_dir is not None else find_split_dir(root)
    vdir = Path(video_dir) if video_dir is not None else (find_video_dir(root) if root is not None else None)
    fdir = Path(frames_root) if frames_root is not None else None
    clips = []
    for rel, label in read_split(sdir, split, subset):
        name = Path(rel).stem
        clips.append(Clip(name=name, label=label,
                          video_path=vdir / rel if vdir is not None else None,
                          frames_dir=fdir / name if fdir is not None else None))
    clips.sort(key=lambda c: (c.label, c.name))
    names = [c.name for c in clips]
    if len(set(names)) != len(names):
        dups = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"clip names listed more than once (in different class folders): {dups[:10]}")
    return clips


# -- frame folders --------------------------------------------------------------------------

_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def frame_files(frames_dir) -> list[Path]:
    """The `.jpg`/`.jpeg` files of a clip's frame folder, ordered by the (last) number in their
    name. Raises Reject for a missing folder, a frame name without a number or two frames with the
    same number."""
    d = Path(frames_dir)
    if not d.is_dir():
        raise Reject(f"missing frame folder: {d}")
    numbered = []
    for entry in os.scandir(d):
        name = entry.name
        stem, ext = os.path.splitext(name)
        if ext.lower() not in (".jpg", ".jpeg") or not entry.is_file():
            continue
        m = _NUMBER.search(stem)
        if m is None:
            raise Reject(f"frame file without a frame number: {d / name}")
        numbered.append((int(m.group(1)), name))
    numbered.sort()
    for (a, na), (b, nb_) in zip(numbered, numbered[1:]):
        if a == b:
            raise Reject(f"two frames with number {a} in {d}: {na}, {nb_}")
    return [d / name for _, name in numbered]


def read_frames_folder(frames_dir, params: UCFParams = UCFParams(), max_pixels: int = MAX_FRAME_PIXELS
                       ) -> tuple[np.ndarray, dict]:
    """The sampled grey frames uint8 `[n_frames, H, W]` of a frame folder, and info
    (`n`, `indices`). Only the sampled JPEGs are decoded (as `cv2.imread(path, IMREAD_GRAYSCALE)`
    does), each after its header passed the `max_pixels` check."""
    files = frame_files(frames_dir)
    n = len(files)
    if n < 2:
        raise Reject(f"fewer than 2 frames ({n}) in {frames_dir}")
    idx = sample_indices(n, params)
    cache: dict[int, np.ndarray] = {}
    frames = []
    for i in idx:
        i = int(i)
        if i not in cache:
            try:
                cache[i] = read_image(str(files[i]), max_pixels, cv2.IMREAD_GRAYSCALE)
            except Reject as e:
                raise Reject(f"unreadable frame JPEG: {files[i]}: {e}") from None
        frames.append(cache[i])
    _check_sizes(frames, idx)
    return np.stack(frames), {"n": n, "indices": idx.tolist()}


def _check_sizes(frames, idx):
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        first = frames[0].shape
        k = next(j for j, f in enumerate(frames) if f.shape != first)
        raise Reject(f"frames of different sizes: frame {int(idx[0])} is {first[1]}x{first[0]}, "
                     f"frame {int(idx[k])} is {frames[k].shape[1]}x{frames[k].shape[0]}")


# -- video ----------------------------------------------------------------------------------

def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise Reject(f"unreadable video: {path}")
    return cap


def _grey(frame: np.ndarray, dst: np.ndarray) -> None:
    """Write the grey version of a decoded frame into `dst` (`cv2.COLOR_BGR2GRAY` for BGR)."""
    if frame.ndim == 3 and frame.shape[2] == 3:
        cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY, dst=dst)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        dst[...] = cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    else:
        dst[...] = frame.reshape(dst.shape)


def _frame_size_checked(cap: cv2.VideoCapture, path: Path, max_pixels: int) -> None:
    """Refuse a video whose reported frame size is unknown or above `max_pixels`, before decoding."""
    w, h = (int(round(cap.get(p))) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
    if w <= 0 or h <= 0:
        raise Reject(f"unreadable video: the container reports no frame size for {path}")
    if w * h > max_pixels:
        raise Reject(f"video frames too large: {w} x {h} = {w * h} pixels > limit {max_pixels} "
                     "(refused before decoding)")


def _decode_pass(path: Path, idx: np.ndarray | None, count_to_end: bool, cap: cv2.VideoCapture | None = None,
                 max_pixels: int = MAX_FRAME_PIXELS):
    """One sequential pass from the first frame (`cap`: a capture just opened, else `path` is
    opened); the capture is released. Returns `(frames, got, decoded, more)`.

    `frames` is uint8 `[len(idx), H, W]` (None when nothing was sampled) holding the grey frames
    at the sampled indices `idx` (in order, repeats allowed); its first `got` rows are filled, as
    far as the decoder got. `decoded` is the number of frames grabbed; `more` whether a frame
    follows the last sampled one. With `count_to_end` the pass grabs on to the end of the stream
    (so `decoded` is the full count) once a frame beyond the last sampled one turns up (or
    always, when `idx` is None). Raises Reject for a sampled frame that does not decode or whose
    size differs from the first one's.
    """
    if cap is None:
        cap = _open(path)
    try:
        frames = None
        last = int(idx[-1]) if idx is not None else -1
        j = 0                                   # next position in idx
        i = 0                                   # index of the next frame to grab
        while i <= last:
            if not cap.grab():
                return frames, j, i, False
            if i == int(idx[j]):
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    raise Reject(f"unreadable video: frame {i} of {path} does not decode")
                if frames is None:
                    if frame.shape[0] * frame.shape[1] > max_pixels:       # the container's size lied
                        raise Reject(f"video frames too large: frame {i} of {path} is {frame.shape[1]} x "
                                     f"{frame.shape[0]} pixels > limit {max_pixels}")
                    frames = np.empty((len(idx),) + frame.shape[:2], np.uint8)
                elif frame.shape[:2] != frames.shape[1:]:
                    raise Reject(f"frames of different sizes in {path}: frame {int(idx[0])} is "
                                 f"{frames.shape[2]}x{frames.shape[1]}, frame {i} is {frame.shape[1]}x{frame.shape[0]}")
                _grey(frame, frames[j])
                j += 1
                while j < len(idx) and int(idx[j]) == i:
                    frames[j] = frames[j - 1]
                    j += 1
            i += 1
        more = cap.grab()
        if more:
            i += 1
            if count_to_end:
                while cap.grab():
                    i += 1
        return frames, j, i, more
    finally:
        cap.release()


def read_video(path, params: UCFParams = UCFParams(), max_missing_frames: int = MAX_MISSING_FRAMES,
               max_pixels: int = MAX_FRAME_PIXELS) -> tuple[np.ndarray, dict]:
    """The sampled grey frames uint8 `[n_frames, H, W]` of a video, streamed (see module docstring),
    and info: `n` (frames decoded), `reported` (`CAP_PROP_FRAME_COUNT`, -1 if unknown), `passes`,
    `indices`. Raises Reject for a missing, unreadable or truncated video, one of < 2 frames or one
    whose frames are larger than `max_pixels`."""
    if isinstance(max_missing_frames, bool) or not isinstance(max_missing_frames, (int, np.integer)) \
            or max_missing_frames < 0:
        raise ValueError(f"max_missing_frames must be an integer >= 0, got {max_missing_frames!r}")
    path = Path(path)
    if not path.is_file():
        raise Reject(f"missing video file: {path}")
    cap = _open(path)
    try:
        _frame_size_checked(cap, path, max_pixels)
        reported = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    except BaseException:
        cap.release()
        raise
    if reported < 0:
        reported = -1
    passes = 1
    if reported >= 2:
        idx = sample_indices(reported, params)
        frames, got, n, more = _decode_pass(path, idx, count_to_end=True, cap=cap, max_pixels=max_pixels)
        if n == reported and not more and got == len(idx):
            return frames, {"n": n, "reported": reported, "passes": 1, "indices": idx.tolist()}
    else:
        _, _, n, _ = _decode_pass(path, None, count_to_end=True, cap=cap)
    # the reported count was wrong: `n` is what the decoder gives
    if reported >= 2 and reported - n > max_missing_frames:
        raise Reject(f"truncated video: the container reports {reported} frames, only {n} decode")
    if n < 2:
        raise Reject(f"fewer than 2 frames ({n}) in {path}")
    idx = sample_indices(n, params)
    frames, got, n2, more = _decode_pass(path, idx, count_to_end=False, max_pixels=max_pixels)
    passes += 1
    if got != len(idx) or more:
        raise Reject(f"unreadable video: the decoder gave {n} frames, then {n2}{'+' if more else ''} "
                     f"on a second pass of {path}")
    return frames, {"n": n, "reported": reported, "passes": passes, "indices": idx.tolist()}


# -- conversion -----------------------------------------------------------------------------

def convert_clip(clip: Clip, params: UCFParams = UCFParams(), use_frames: bool = False, *,
                 max_missing_frames: int = MAX_MISSING_FRAMES, max_pixels: int = MAX_FRAME_PIXELS
                 ) -> tuple[np.ndarray, dict]:
    """Events uint8 `[2, n_frames - 1, H, W]` of one clip and an info dict, or raise `Reject`.

    `use_frames`: read the clip's frame folder (`clip.frames_dir`) instead of its video;
    `max_pixels`: the frame size limit (module docstring). Info keys:
    `source` ("frames"/"video"), `n` (frames in the clip), `indices` (sampled), `shape` (H, W of
    the events), `thresholds` (lo, hi), `counts` (ON, OFF events), `read_s`/`convert_s` (seconds);
    for videos also `reported` (container frame count) and `passes` (decoding passes).
    """
    t0 = time.perf_counter()
    if use_frames:
        if clip.frames_dir is None:
            raise ValueError(f"clip {clip.name} has no frames_dir (list clips with frames_root)")
        frames, info = read_frames_folder(clip.frames_dir, params, max_pixels)
        info["source"] = "frames"
    else:
        if clip.video_path is None:
            raise ValueError(f"clip {clip.name} has no video_path (list clips with a video folder)")
        frames, info = read_video(clip.video_path, params, max_missing_frames, max_pixels)
        info["source"] = "video"
    t1 = time.perf_counter()
    events, (lo, hi) = es_ucf101_events(frames, params, return_thresholds=True)
    t2 = time.perf_counter()
    info.update(shape=tuple(events.shape[2:]), thresholds=(lo, hi),
                counts=(int(np.count_nonzero(events[0])), int(np.count_nonzero(events[1]))),
                read_s=t1 - t0, convert_s=t2 - t1)
    return events, info


def save_published(path, events: np.ndarray) -> None:
    """Write one clip as the published generator did: `np.savez_compressed(path, events)` (`arr_0`)."""
    events = np.asarray(events)
    if events.ndim != 4 or events.shape[0] != 2 or events.dtype != np.uint8:
        raise ValueError(f"events must be uint8 [2, S, H, W], got {events.dtype} {events.shape}")
    np.savez_compressed(path, events)


# -- command-line helpers -------------------------------------------------------------------

def add_source_arguments(parser) -> None:
    """The UCF101 source options of `odg build ucf101` (root positional not included): `--fold`
    (UCF101's official train/test split, 1-3; `--split` is its deprecated spelling), `--subset`, `--frames`."""
    from .commands._options import deprecated
    parser.add_argument("--fold", type=int, choices=SPLITS, default=1,
                        help="UCF101's official train/test split (its trainlist0N/testlist0N files)")
    deprecated(parser, "--split", "--fold", "fold", type=int, choices=SPLITS)
    parser.add_argument("--subset", choices=SUBSETS, default="train", help="train, test or all clips of the fold")
    parser.add_argument("--frames", metavar="DIR", default=None,
                        help="read clips from DIR/<clip>/*.jpg frame folders (e.g. jpegs_256) "
                             "instead of the .avi files")
