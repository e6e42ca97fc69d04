"""A secret kept in a file that may appear or change while the API runs (a key a deploy rotates)."""

from __future__ import annotations

import os
from pathlib import Path


class SecretFile:
    """Reads the file again only when it was replaced (inode) or its modification time or size changed;
    never logs the value.

    `strip`: drop surrounding whitespace (text secrets); binary keys are used byte for byte.
    """

    def __init__(self, path: Path, what: str, *, strip: bool = True) -> None:
        self.path = path
        self.what = what
        self.strip = strip
        self._stamp: tuple[int, int, int] | None = None
        self._value = b""

    def read(self) -> bytes:
        """The file's bytes; OSError/ValueError say what is wrong."""
        stat = os.stat(self.path)
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            value = self.path.read_bytes()
            value = value.strip() if self.strip else value
            if not value:
                raise ValueError(f"the {self.what} file {self.path} is empty")
            self._value, self._stamp = value, stamp
        return self._value

    def problem(self) -> str | None:
        """Why the secret cannot be read, or None."""
        try:
            self.read()
        except OSError as err:
            return f"cannot read the {self.what} file {self.path}: {err.strerror}"
        except ValueError as err:
            return str(err)
        return None
