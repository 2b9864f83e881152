"""Opening a report in headless Chromium: every image drawn, every in-page link resolving, and a
screenshot of the rendered page; plus the file references of a page, checked on disk."""
from __future__ import annotations

import json
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_MISSING = (f"headless Chromium ({CHROMIUM}) is not installed: apt-get install -y chromium "
                    "(the report's rendering check needs it; .ci/run installs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--run-all-compositor-stages-before-draw",
         "--virtual-time-budget=10000"]
CHECK = ("<script>window.addEventListener('load',function(){var im=Array.from(document.images);"
         "var bad=im.filter(function(i){return !(i.complete&&i.naturalWidth>0&&i.offsetHeight>0)})"
         ".map(function(i){return i.getAttribute('src')});"
         "var miss=Array.from(document.querySelectorAll('a[href^=\"#\"]')).map(function(a){return a.getAttribute('href')})"
         ".filter(function(h){return !document.getElementById(h.slice(1))});"
         "var h2=Array.from(document.querySelectorAll('h2[id]')).map(function(h){return h.id});"
         "var p=document.createElement('pre');p.id='odg-check';p.textContent=JSON.stringify({n:im.length,bad:bad,"
         "missing_anchors:miss,sections:h2,height:document.documentElement.scrollHeight});"
         "document.body.appendChild(p);});</script>")


class Refs(HTMLParser):
    """src/href attributes of a page; `imgs` the image sources."""

    def __init__(self):
        super().__init__()
        self.refs, self.imgs = [], []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") and v is not None:
                self.refs.append(v)
                if tag == "img":
                    self.imgs.append(v)


def refs(path) -> Refs:
    p = Refs()
    p.feed(Path(path).read_text())
    return p


def check_files(path) -> Refs:
    """Every non-anchor reference of the page is a relative path to an existing file; every image is a PNG
    with its SVG linked, and the folder holds no figure the page does not show."""
    out = Path(path).parent
    p = refs(path)
    files = [r for r in p.refs if not r.startswith("#")]
    assert files and p.imgs
    for r in files:
        assert "://" not in r and not r.startswith("/"), f"not a relative reference: {r}"
        assert (out / r).is_file(), f"{r} referenced by {path} does not exist"
    for img in p.imgs:
        assert img.endswith(".png") and img[:-4] + ".svg" in files, f"{img} has no SVG link"
        assert (out / (img[:-4] + ".svg")).read_bytes()[:200].lstrip().startswith((b"<?xml", b"<svg"))
    assert set(p.imgs) == {f.name for f in out.glob("*.png")}, "every PNG written is shown, and only those"
    assert {r for r in files if r.endswith(".svg")} == {f.name for f in out.glob("*.svg")}
    return p


def _run(args, timeout=90):
    return subprocess.run([CHROMIUM] + FLAGS + args, capture_output=True, text=True, timeout=timeout)


def render(path, tmp) -> dict:
    """Load the page in headless Chromium: the in-page check's result, and `shot`, a screenshot
    (uint8 BGR) of the page's top `min(height, 12000)` pixels at 1280 wide."""
    import cv2
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(CHROMIUM_MISSING)
    path = Path(path)
    check = path.parent / "_chromium_check.html"
    check.write_text(path.read_text().replace("</body>", CHECK + "</body>"))
    try:
        r = _run([f"--user-data-dir={tmp / 'profile-dom'}", "--dump-dom", check.as_uri()])
    finally:
        check.unlink()
    dom = r.stdout
    assert 'id="odg-check"' in dom, f"Chromium did not run the check (rc {r.returncode}): {r.stderr[-2000:]}"
    got = json.loads(dom.split('id="odg-check">', 1)[1].split("</pre>", 1)[0].replace("&quot;", '"'))
    shot = tmp / "screenshot.png"
    height = int(min(max(got["height"], 600), 12000))
    r = _run([f"--user-data-dir={tmp / 'profile-shot'}", f"--window-size=1280,{height}", f"--screenshot={shot}",
              path.as_uri()])
    assert shot.is_file(), f"no screenshot (rc {r.returncode}): {r.stderr[-2000:]}"
    got["shot"] = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    return got


def check_render(path, tmp, sections) -> dict:
    """The page renders with every image drawn, every in-page link resolving, the given sections
    present, and a screenshot that shows the page (not blank: many colours, figures drawn)."""
    got = render(path, tmp)
    assert got["n"] == len(refs(path).imgs) and got["bad"] == [] and got["missing_anchors"] == []
    for s in sections:
        assert s in got["sections"], (s, got["sections"])
    shot = got["shot"]
    assert shot is not None and shot.shape[1] == 1280 and shot.shape[0] >= 600
    colours = len(np.unique(shot.reshape(-1, 3)[::7], axis=0))
    assert colours > 200, f"the screenshot looks blank ({colours} colours)"
    assert (shot < 250).any(axis=2).mean() > 0.05, "the screenshot is almost all white"
    return got
