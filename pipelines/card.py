"""Dataset cards: what a store split was built from, how, by which odg, and on which terms.

A build or an import (`odg.pipelines.build.run_build`) writes the card beside the split's other
bookkeeping files, `<split>/_odg/card.json`, just before it marks the split complete; `odg info
--card` prints it as Markdown and `odg stats` shows it in the report. Like the lock, the card is
provenance, not data: two builds of the same inputs give the same arrays and attributes and
differ only in their cards (date, command line). A card (JSON) holds:

- `source`: the split's source description (layout `folder`, `archive`, `published`, `ucf101`;
  its path) and `digest`: per source path, either `file` (an archive or a single file:
  `sha256` and `md5` of its bytes, streamed once by a Dask worker while the build runs, and
  reused on a resume when its size and modification time are unchanged; `matches_published`: whether
  the md5 is the one published for that archive name, e.g. ILSVRC2012_img_train.tar) or `tree` (a folder:
  `sha256` of the sorted lines `<relative path>\\t<size in bytes>\\n` of every file under it,
  that is names and sizes, not contents; `files`, `bytes`);
- `counts`: samples, kept, discarded, rejected;
- `method`: `method_of(kind, params)` (the method's name, every parameter with its published value);
- `odg`: `version` and `commit` (the git commit of the checkout odg runs from, with `modified`
  when its tracked files differ from it; `"release"` when odg is not run from a checkout);
- `command` (the process's command line), `date` (UTC, ISO 8601), `resumed`;
- `terms`: the source dataset, its licence terms and the citations, from
  `pipelines/data/dataset_terms.json` (the one place that text lives).
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from functools import lru_cache
from importlib import resources
from pathlib import Path

FORMAT = "odg-card"
FORMAT_VERSION = 1
TERMS_FILE = "dataset_terms.json"
CARD_KEY = "_odg/card.json"                  # under the split
DIGEST_CACHE = "_odg/source_digest.json"     # under the split: the archives' digests, kept across resumes
BLOCK = 8 << 20                              # bytes read per step when hashing a file


def _keys(url: str):
    from .store.keys import StoreKeys
    return StoreKeys(url)


# -- what the card says ---------------------------------------------------------------------

@lru_cache(maxsize=1)
def _terms() -> dict:
    return json.loads(resources.files("odg.pipelines").joinpath("data", TERMS_FILE).read_text())["kinds"]


def terms(kind: str) -> dict:
    """Source dataset, licence terms and citations of a store kind (empty fields for an unknown kind)."""
    return _terms().get(kind, {"source_dataset": None, "licence": None, "licence_url": None, "citations": []})


def _published_defaults(kind: str, params: dict):
    """(method name, published parameter values or None) of a store kind's parameters."""
    from .store import KIND_IMAGENET, KIND_UCF101
    if kind == KIND_IMAGENET and "trajectory" in params:
        from odg import ODGParams
        return "ODG: Omnidirectional Discrete Gradient (ES-ImageNet)", ODGParams().to_dict()
    if kind == KIND_UCF101:
        from odg.video import UCFParams
        mode = params.get("mode", 1)
        how = "clip thresholds" if mode == 1 else "per-pixel Gaussian thresholds"
        return f"ES-UCF101: frame differences, {how} (mode {mode})", UCFParams().to_dict()
    return None, None


def _plain(v):
    return json.loads(json.dumps(v))


def method_of(kind: str, params: dict) -> dict:
    """The conversion method of a store: `name` (`params["method"]` when the store names one),
    and `params`: every parameter as `{"name", "value", "published", "deviates"}` (`published`
    None when odg knows no published value for it), `published_params` whether all equal."""
    name, defaults = _published_defaults(kind, params)
    name = params.get("method") or name or kind
    defaults = _plain(defaults) if defaults is not None else {}
    rows = []
    for k, v in params.items():
        pub = defaults.get(k)
        rows.append({"name": k, "value": v, "published": pub,
                     "deviates": k in defaults and _plain(v) != pub})
    known = bool(defaults) and set(defaults) == set(params)
    return {"name": name, "params": rows,
            "published_params": (known and not any(r["deviates"] for r in rows)) if defaults else None}


def provenance() -> dict:
    """odg's version, and the git commit of the checkout it runs from (`"release"` otherwise)."""
    import odg
    root = Path(odg.__file__).resolve().parent.parent
    commit, modified = "release", None
    if (root / ".git").exists():
        try:
            r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=20)
            if r.returncode == 0:
                commit = r.stdout.strip()
                s = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=60)
                modified = bool(s.stdout.strip()) if s.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired):
            pass
    return {"version": odg.__version__, "commit": commit, "modified": modified}


def command_line(argv=None) -> str:
    """The process's command line; `odg ...` for the console script and `python -m odg`."""
    argv = list(sys.argv if argv is None else argv)
    if argv and os.path.basename(argv[0]) in ("odg", "__main__.py"):
        argv = ["odg"] + argv[1:]
    return shlex.join(argv)


# -- source digests (run in a Dask worker) ----------------------------------------------------

def file_digest(path: str, known: dict | None = None) -> dict:
    """sha256 and md5 of a file's bytes, read once in `BLOCK`-byte steps (md5 in a second thread, beside
    sha256: hashlib releases the GIL). `known`: file name -> published md5; `matches_published` says
    whether this file's md5 is its name's published one (None for a name without one)."""
    from concurrent.futures import ThreadPoolExecutor
    sha, md5, n = hashlib.sha256(), hashlib.md5(), 0
    st = os.stat(path)
    with open(path, "rb") as f, ThreadPoolExecutor(1) as pool:
        pending = None
        while block := f.read(BLOCK):
            if pending is not None:
                pending.result()
            pending = pool.submit(md5.update, block)
            sha.update(block)
            n += len(block)
        if pending is not None:
            pending.result()
    pub = (known or {}).get(os.path.basename(path))
    return {"path": path, "kind": "file", "method": "sha256 and md5 of the file's bytes", "sha256": sha.hexdigest(),
            "md5": md5.hexdigest(), "bytes": n, "mtime_ns": st.st_mtime_ns, "published_md5": pub,
            "matches_published": None if pub is None else md5.hexdigest() == pub}


def tree_digest(path: str) -> dict:
    """sha256 of the sorted lines '<relative path>\\t<size>\\n' of every file under `path`."""
    lines = []
    for d, dirs, files in os.walk(path):
        dirs.sort()
        for fn in files:
            full = os.path.join(d, fn)
            try:
                size = os.stat(full).st_size
            except OSError:
                continue
            lines.append((os.path.relpath(full, path).replace(os.sep, "/"), size))
    lines.sort()
    h = hashlib.sha256()
    for rel, size in lines:
        h.update(f"{rel}\t{size}\n".encode())
    return {"path": path, "kind": "tree", "method": "sha256 of the sorted lines '<relative path>\\t<size in bytes>' "
            "of every file under the folder (names and sizes, not contents)", "sha256": h.hexdigest(),
            "files": len(lines), "bytes": int(sum(s for _, s in lines))}


def source_paths(source: dict) -> list[str]:
    """The files and folders a split's source description names (its path, frame folder, class list)."""
    return [source[k] for k in ("path", "frames", "classes") if source.get(k)]


def source_digest(source: dict, known: dict | None = None) -> list[dict]:
    """A digest of every path of the source: `file_digest` for a file (`known`: published md5s by file
    name), `tree_digest` for a folder."""
    out = []
    for p in source_paths(source):
        if os.path.isfile(p):
            out.append(file_digest(p, known))
        elif os.path.isdir(p):
            out.append(tree_digest(p))
        else:
            out.append({"path": p, "kind": "missing", "error": "no such file or folder"})
    return out


def _cached(url: str, split: str, source: dict):
    """The recorded digest when every source path is a file whose size and mtime are unchanged."""
    try:
        got = _keys(url).get_json(f"{split}/{DIGEST_CACHE}")
    except ValueError:      # unreadable: digest the sources again
        return None
    if not got or [d.get("path") for d in got] != source_paths(source):
        return None
    for d in got:
        try:
            st = os.stat(d["path"])
        except OSError:
            return None
        if d.get("kind") != "file" or st.st_size != d["bytes"] or st.st_mtime_ns != d["mtime_ns"]:
            return None
    return got


def start_digest(client, url: str, split: str, source: dict, kind: str):
    """The source digest: recorded (unchanged archives), or a Dask task started now (a Future)."""
    got = _cached(url, split, source)
    if got is not None:
        return got
    known = {k: v["md5"] for k, v in terms(kind).get("source_checksums", {}).items()}
    return client.submit(source_digest, source, known, key=f"odg-source-digest-{split}-{os.getpid()}-{time.time_ns()}",
                         pure=False, priority=10)


def finish_digest(url: str, split: str, digest) -> list[dict]:
    """Wait for the digest task (if any), record it for resumes and return it; a failure is recorded as
    `{"kind": "error", "error": ...}` instead of stopping the build."""
    if not isinstance(digest, list):
        try:
            digest = digest.result()
        except Exception as e:  # noqa: BLE001 - the card says why, the build goes on
            return [{"kind": "error", "error": f"{type(e).__name__}: {e}"}]
    try:
        _keys(url).put_json(f"{split}/{DIGEST_CACHE}", digest)
    except OSError:         # e.g. a full disk: the cache is only a cache, the build reports its shards
        pass
    return digest


# -- writing and reading --------------------------------------------------------------------

def make_card(spec, counts: dict, digest: list, resumed: bool) -> dict:
    """The card of a split built from `spec` (a `BuildSpec`) with these `counts`."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": spec.kind, "split": spec.split,
            "source": dict(spec.source, digest=digest), "counts": dict(counts),
            "method": method_of(spec.kind, spec.params), "odg": provenance(), "command": command_line(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "resumed": bool(resumed),
            "terms": terms(spec.kind)}


def record(spec, counts: dict, digest: list, resumed: bool) -> dict:
    """Write the split's card (before the split is marked complete)."""
    card = make_card(spec, counts, digest, resumed)
    _keys(spec.url).put_json(f"{spec.split}/{CARD_KEY}", card)
    return card


def read_card(url: str, split: str) -> dict | None:
    """The split's card; None for a split not complete or built by an odg that did not write cards."""
    return _keys(url).get_json(f"{split}/{CARD_KEY}")


def read_cards(store, splits=None) -> dict:
    """split -> card (`read_card`) of the store's splits (default all)."""
    return {s: read_card(store.url, s) for s in (splits or store.splits)}


# -- presenting -----------------------------------------------------------------------------

def _size(n) -> str:
    for unit, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= f:
            return f"{n / f:,.2f} {unit}"
    return f"{n:,} B"


def digest_text(d: dict) -> str:
    if d.get("kind") == "file":
        pub = {None: "", True: "; the md5 published for this file name", False: "; NOT the md5 published for this "
               f"file name ({d.get('published_md5')})"}[d.get("matches_published")]
        return f"{d['path']}: sha256 {d['sha256']}, md5 {d['md5']} ({_size(d['bytes'])}; {d['method']}{pub})"
    if d.get("kind") == "tree":
        return f"{d['path']}: sha256 {d['sha256']} ({d['files']:,} files, {_size(d['bytes'])}; {d['method']})"
    return f"{d.get('path', 'source')}: no digest ({d.get('error', 'unknown')})"


def card_fields(card: dict) -> list[tuple[str, object]]:
    """(field, text or list of texts) in display order: what Markdown and the HTML report show."""
    src, c, o = card["source"], card["counts"], card["odg"]
    commit = o["commit"] if o["commit"] == "release" else o["commit"] + (" (modified)" if o.get("modified") else "")
    m = card["method"]
    t = card["terms"]
    return [
        ("source", f"{src.get('layout', '?')} {src.get('path', '')}".strip()),
        ("source digest", [digest_text(d) for d in src.get("digest", [])]),
        ("samples", f"{c['samples']:,}: {c['kept']:,} kept, {c['discarded']:,} discarded, {c['rejected']:,} rejected"),
        ("method", m["name"] + ("" if m["published_params"] is None else
                                " with the published parameters" if m["published_params"] else
                                " with parameters that deviate from the published ones")),
        ("parameters", [f"{r['name']} = {json.dumps(r['value'])}" + (f" (published {json.dumps(r['published'])})"
                                                                      if r["deviates"] else "") for r in m["params"]]),
        ("odg", f"{o['version']}, commit {commit}"),
        ("command", card["command"]),
        ("date", card["date"] + (" (resumed build)" if card.get("resumed") else "")),
        ("source dataset", t.get("source_dataset") or "—"),
        ("licence", (t.get("licence") or "—") + (f" ({t['licence_url']})" if t.get("licence_url") else "")),
        ("cite", [x["text"] for x in t.get("citations", [])]),
    ]


def card_markdown(url: str, cards: dict) -> str:
    """The cards of a store's splits as one Markdown document."""
    out = [f"# Dataset card: `{url}`", ""]
    for split, card in cards.items():
        out += [f"## Split `{split}`", ""]
        if card is None:
            out += ["No card: the split is incomplete, or was built by an odg that did not write cards.", ""]
            continue
        for field, value in card_fields(card):
            if isinstance(value, list):
                out.append(f"- **{field}**:")
                out += [f"  - {v}" for v in value] or ["  - —"]
            elif field == "command":
                out.append(f"- **{field}**: `{value}`")
            else:
                out.append(f"- **{field}**: {value}")
        out.append("")
    out.append(f"Licence and citation text: `pipelines/data/{TERMS_FILE}` of odg.")
    return "\n".join(out) + "\n"
