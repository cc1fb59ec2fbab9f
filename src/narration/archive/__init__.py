"""The archive: finished jobs' records and logs as gzip NDJSON in a directory or an fsspec URL,
readable through the same API after the live store forgot them (docs/ARCHIVE.md)."""

from .archive import Archive, ArchivedJob
from .fs import ArchiveFS, FsspecFS, LocalFS, open_fs
from .log import ArchivedEventLog
from .writer import ArchiveError, Archiver

__all__ = [
    "Archive",
    "ArchiveError",
    "ArchiveFS",
    "ArchivedEventLog",
    "ArchivedJob",
    "Archiver",
    "FsspecFS",
    "LocalFS",
    "open_fs",
]
