"""Where an archive keeps its files: a local directory (plain files, no extra needed) or any
fsspec URL (`s3://bucket/prefix`, `gs://…`, `az://…`, `memory://…`; the `archive` extra
installs fsspec, and each cloud needs its own fsspec package: s3fs, gcsfs, adlfs).

Every call blocks: the archive runs them in worker threads, never on the event loop."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Protocol

__all__ = ["ArchiveFS", "FsspecFS", "LocalFS", "open_fs"]


class ArchiveFS(Protocol):
    """The few file operations an archive needs; paths are `/`-separated, relative to its root."""

    url: str

    def write(self, path: str, chunks: Iterable[bytes]) -> int:
        """Write a whole file from `chunks` (readers never see it half-written); its size."""

    def read(self, path: str) -> bytes | None:
        """A whole (small) file, or None when it does not exist."""

    def open(self, path: str) -> IO[bytes] | None:
        """A file open for reading, or None when it does not exist."""

    def names(self, path: str) -> list[str]:
        """The names in a directory, sorted (empty when it does not exist)."""

    def remove(self, path: str) -> None:
        """Delete a file (nothing when it does not exist); an emptied directory goes too."""

    def total_size(self, path: str) -> int:
        """Bytes of every file under `path`."""


class LocalFS:
    """Plain files under a local directory: each write goes to a temporary file, is synced,
    then renamed into place."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self.url = str(self.root)

    def _path(self, path: str) -> Path:
        return self.root / path

    def write(self, path: str, chunks: Iterable[bytes]) -> int:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        size = 0
        try:
            with open(temporary, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        return size

    def read(self, path: str) -> bytes | None:
        try:
            return self._path(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def open(self, path: str) -> IO[bytes] | None:
        try:
            return open(self._path(path), "rb")
        except (FileNotFoundError, NotADirectoryError):
            return None

    def names(self, path: str) -> list[str]:
        try:
            return sorted(name for name in os.listdir(self._path(path)) if not name.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def remove(self, path: str) -> None:
        target = self._path(path)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        with contextlib.suppress(OSError):  # not empty, or already gone
            target.parent.rmdir()

    def total_size(self, path: str) -> int:
        total = 0
        for folder, _, files in os.walk(self._path(path)):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.stat(os.path.join(folder, name)).st_size
        return total


class FsspecFS:
    """Files on any fsspec filesystem (an object store writes each file whole, on close)."""

    def __init__(self, url: str, **options: Any) -> None:
        try:
            from fsspec.core import url_to_fs
        except ImportError:
            raise ValueError(
                f"the archive {url!r} needs fsspec: pip install 'narration-core[archive]' "
                "(plus s3fs, gcsfs or adlfs for s3://, gs:// or az://)"
            ) from None
        try:
            self.fs, root = url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:  # e.g. s3:// without s3fs, an unknown scheme
            raise ValueError(f"the archive {url!r} cannot be opened: {exc}") from None
        self.root = root.rstrip("/")
        self.url = url

    def _path(self, path: str) -> str:
        return f"{self.root}/{path}"

    def write(self, path: str, chunks: Iterable[bytes]) -> int:
        target = self._path(path)
        parent = target.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        size = 0
        with self.fs.open(target, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
        return size

    def read(self, path: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(self._path(path))
        except FileNotFoundError:
            return None
        return data

    def open(self, path: str) -> IO[bytes] | None:
        try:
            handle: IO[bytes] = self.fs.open(self._path(path), "rb")
        except FileNotFoundError:
            return None
        return handle

    def names(self, path: str) -> list[str]:
        try:
            entries = self.fs.ls(self._path(path), detail=False)
        except FileNotFoundError:
            return []
        names = (str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)
        return sorted(name for name in names if not name.startswith("."))

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(path))

    def total_size(self, path: str) -> int:
        try:
            return int(self.fs.du(self._path(path), total=True))
        except FileNotFoundError:
            return 0


def open_fs(url: str) -> ArchiveFS:
    """The filesystem of an archive URL: a plain path or `file://` is a local directory;
    any other `scheme://` goes through fsspec."""
    if url.startswith("file://"):
        return LocalFS(url[len("file://") :])
    if "://" in url:
        return FsspecFS(url)
    return LocalFS(url)
