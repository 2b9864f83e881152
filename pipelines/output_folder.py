"""Writing into an output folder without ever following a symlink odg did not create.

`OutputFolder(root)` makes its subfolders one level at a time and refuses a symlink, or a file,
where a subfolder should be; it writes every file to a fresh temporary name in the file's folder
(`O_CREAT | O_EXCL | O_NOFOLLOW`) and renames it over the final name, which replaces whatever
entry was there (a symlink included) instead of writing through it. `root` itself is the
user's choice and may be a symlink to another disk.
"""
from __future__ import annotations

import os
import secrets
import stat


class OutputError(ValueError):
    """An output folder odg refuses to write into; the message names the offending path."""


class OutputFolder:
    def __init__(self, root: str):
        if os.path.exists(root) and not os.path.isdir(root):
            raise OutputError(f"{root} exists and is not a folder")
        os.makedirs(root, exist_ok=True)
        self.root = root
        self._made = {""}

    def folder(self, rel: str) -> str:
        """`root/rel` (made if missing), checked level by level; raises OutputError for a symlink or file."""
        rel = rel.strip("/")
        if rel not in self._made:
            if any(part in ("", ".", "..") for part in rel.split("/")):
                raise OutputError(f"{rel!r} is not a plain relative path inside {self.root}")
            parent, _, _ = rel.rpartition("/")
            self.folder(parent)
            path = os.path.join(self.root, rel)
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                raise OutputError(f"{path} is a symlink; odg does not write through symlinks it did not create")
            if not stat.S_ISDIR(mode):
                raise OutputError(f"{path} exists and is not a folder")
            self._made.add(rel)
        return os.path.join(self.root, rel)

    def write(self, rel: str, fill) -> str:
        """Write `root/rel` with `fill(binary file)`: to a temporary name, then renamed; returns the path."""
        d, _, name = rel.rpartition("/")
        final = os.path.join(self.folder(d), name)
        tmp = os.path.join(os.path.dirname(final), f".{name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
            os.replace(tmp, final)
        except BaseException:
            os.unlink(tmp)
            raise
        return final

    def write_text(self, rel: str, text: str) -> str:
        return self.write(rel, lambda f: f.write(text.encode()))
