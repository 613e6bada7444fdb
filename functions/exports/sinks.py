"""The local directory sink of the exports (`beacon export ... --out DIR`).

Keys are `/`-separated and relative; a key that would leave the directory
(`..`, an absolute path) is refused. Files are written whole under a temporary
name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath


class LocalSink:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        relative = PurePosixPath(key)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ValueError(f"export key {key!r} is not a relative path inside the output")
        return self.root.joinpath(*relative.parts)

    def put(self, key: str, body: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(body)
        partial.replace(path)

    def keys(self, prefix: str) -> list[str]:
        directory = self._path(prefix) if prefix.strip("/") else self.root
        if not directory.is_dir():
            return []
        return sorted(
            str(PurePosixPath(*p.relative_to(self.root).parts))
            for p in directory.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)
