"""Files that hold what people said (the MQTT spool, captured utterances): 0600 in a 0700
directory, never opened through a symbolic link, never a file of another user."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnsafePathError(OSError):
    """A private file or its directory is not safe to use (a link, another user's file)."""


def open_private(path: Path, flags: int) -> int:
    """Open (creating 0600) a file of ours; never through a symbolic link."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if path.is_symlink():
            raise UnsafePathError(f"{path} is a symbolic link; not followed (remove it)") from exc
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise UnsafePathError(f"{path} is not a file of this user; not used (remove it)")
    if st.st_mode & 0o077:  # left readable by an older version
        os.fchmod(fd, 0o600)
    return fd


def read_private(path: Path) -> bytes:
    """The file's bytes; b"" when it does not exist."""
    try:
        fd = open_private(path, os.O_RDONLY)
    except FileNotFoundError:
        return b""
    with os.fdopen(fd, "rb") as f:
        return f.read()


def write_private(path: Path, data: bytes, *, append: bool = False, new: bool = False) -> None:
    """Write (append, or with `new` refuse an existing file) `data` to a private file."""
    mode = os.O_APPEND if append else os.O_EXCL if new else os.O_TRUNC
    with os.fdopen(open_private(path, os.O_WRONLY | os.O_CREAT | mode), "wb") as f:
        f.write(data)


def private_dir(d: Path, create: bool, setting: str) -> bool:
    """Whether directory `d` exists (made 0700 if `create`); a symbolic link to a directory
    of another user is refused, naming the `setting` that points at it."""
    if create:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not d.is_dir():
        return False
    if d.is_symlink() and d.stat().st_uid not in (os.geteuid(), 0):
        raise UnsafePathError(f"{d} is a symbolic link to a directory of another user; "
                              f"not used (point {setting} at a directory of this user)")
    return True


def state_dir() -> Path:
    """Where the daemon keeps state: systemd's $STATE_DIRECTORY (its first entry), else
    ~/.local/state/edgevoice."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) if state else Path.home() / ".local" / "state" / "edgevoice"
