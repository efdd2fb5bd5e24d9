"""Finding keytui secrets in files: by prefix, shape and checksum, never by the look alone.

One compiled regex over bytes (:data:`keyformat.CANDIDATE`) finds candidates; only those are
decoded and checked (:func:`keyformat.key_id_of`), so text runs at the speed of the regex
engine's literal search for ``kt_``. Files are read in chunks; each chunk keeps the tail of the
one before it, so a secret across a chunk boundary is found once. Nothing here opens a
database: what a secret's key is, the service says (``KeyService.find_keys``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .keyformat import CANDIDATE, SECRET_LENGTH, key_id_of

CHUNK = 1 << 20  # bytes read at a time
BINARY_PROBE = 8192  # a NUL in a file's first 8 KiB makes it binary (as git and grep decide)
STDIN = "<stdin>"
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn"})  # version control's own store


@dataclass(frozen=True)
class Finding:
    """One secret with a good checksum: where it is (1-based line and column, in characters)
    and its key ID. Never the secret itself."""

    path: str
    line: int
    column: int
    key_id: str


@dataclass(frozen=True)
class Skip:
    path: str
    reason: str


def scan_stream(
    read: Callable[[int], bytes], path: str, chunk_size: int = CHUNK
) -> list[Finding] | None:
    """The secrets in what ``read`` returns until it returns ``b""``; None for binary data.

    A candidate is reported only when the byte after it is known (or the data ended), so one
    straddling two chunks is checked in the next round, whose buffer starts with the last
    ``SECRET_LENGTH`` bytes of this one (and the byte before them, for the boundary check).
    """
    chunk = read(chunk_size)
    if b"\0" in chunk[:BINARY_PROBE]:
        return None
    findings: list[Finding] = []
    carry = b""
    base = 0  # offset in the data of buffer[0]
    search_from = 0  # where in the buffer a candidate may start (0 or 1: see the carry)
    line = 1  # the line at buffer[counted]
    line_start = 0  # offset in the data of that line's first byte
    while True:
        buffer = carry + chunk if carry else chunk
        at_end = not chunk
        limit = len(buffer) if at_end else len(buffer) - SECRET_LENGTH
        counted = 0
        for match in CANDIDATE.finditer(buffer, search_from):
            start = match.start()
            if start >= limit:
                break
            key_id = key_id_of(match.group().decode("ascii"))
            if key_id is None:
                continue
            newlines = buffer.count(b"\n", counted, start)
            if newlines:
                line += newlines
                line_start = base + buffer.rfind(b"\n", counted, start) + 1
            counted = start
            if line_start >= base:
                column = len(buffer[line_start - base : start].decode("utf-8", "replace")) + 1
            else:  # the line began in an earlier chunk: count its bytes
                column = base + start - line_start + 1
            findings.append(Finding(path, line, column, key_id))
        if at_end:
            return findings
        keep = max(limit - 1, 0)  # the carry: one byte before the unchecked tail, and the tail
        newlines = buffer.count(b"\n", counted, keep)
        if newlines:
            line += newlines
            line_start = base + buffer.rfind(b"\n", counted, keep) + 1
        if limit > 0:
            search_from = limit - keep
        carry = buffer[keep:]
        base += keep
        chunk = read(chunk_size)


def scan_file(path: Path, shown: str, chunk_size: int = CHUNK) -> list[Finding] | None:
    with open(path, "rb") as stream:
        return scan_stream(stream.read, shown, chunk_size)


def walk(
    paths: Sequence[str], *, follow_symlinks: bool = False
) -> Iterator[tuple[str, Path] | Skip]:
    """The regular files under ``paths`` (``-`` passes through as stdin), each once.

    Directories are walked recursively, without ``.git``, ``.hg`` and ``.svn``. A symbolic link
    named on the command line is followed; one met inside a directory is not (whatever it
    points to inside the tree is reached by its own path; outside, it is not the tree's), unless
    ``follow_symlinks``. FIFOs, sockets and devices are skipped: reading one could block.
    """
    seen: set[tuple[int, int]] = set()

    def regular(path: Path, shown: str) -> tuple[str, Path] | Skip | None:
        try:
            info = path.stat()
        except OSError as exc:
            return Skip(shown, f"cannot read: {exc.strerror or exc}")
        if not stat.S_ISREG(info.st_mode):
            return Skip(shown, "not a regular file")
        if (info.st_dev, info.st_ino) in seen:
            return None
        seen.add((info.st_dev, info.st_ino))
        return (shown, path)

    for given in paths:
        if given == "-":
            yield (STDIN, Path("-"))
            continue
        top = Path(given)
        if not top.is_dir():
            item = regular(top, given)
            if item is not None:
                yield item
            continue
        walked_dirs: set[tuple[int, int]] = set()
        unlisted: list[OSError] = []
        for root, dirs, files in os.walk(top, followlinks=follow_symlinks, onerror=unlisted.append):
            while unlisted:  # a directory we may not list
                exc = unlisted.pop()
                yield Skip(str(exc.filename), f"cannot read: {exc.strerror or exc}")
            here = Path(root)
            if follow_symlinks:  # a link back up the tree would loop forever
                info = here.stat()
                if (info.st_dev, info.st_ino) in walked_dirs:
                    dirs[:] = []
                    continue
                walked_dirs.add((info.st_dev, info.st_ino))
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
            for name in sorted(files):
                path = here / name
                shown = str(path)
                if not follow_symlinks and path.is_symlink():
                    yield Skip(shown, "symbolic link, not followed (--follow-symlinks)")
                    continue
                item = regular(path, shown)
                if item is not None:
                    yield item
        for exc in unlisted:
            yield Skip(str(exc.filename), f"cannot read: {exc.strerror or exc}")
