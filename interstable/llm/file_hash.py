"""File hashing for model files: :func:`file_sha256`, cached for the life of the process.

Re-exported by :mod:`interstable.llm.models`; :class:`~interstable.llm.models.ModelInfo`, the download check and the
infotext's model hash all use it.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__all__ = ["file_sha256"]

_HASH_CHUNK = 8 * 1024 * 1024


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:  # noqa: PTH123 (a plain buffered read is the fastest way to hash)
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """Return the SHA-256 hex digest of a file, cached by (path, size, mtime) for the life of the process."""
    stat = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
