"""LLM model files: finding ``.gguf`` files in a folder the caller hands in, checking them, fetching the default one.

Callers choose models by *name* (a path relative to the models folder, as :func:`list_models` reports it), never by
an arbitrary path: :func:`resolve_model` refuses ``..``, absolute paths and symlinks that lead out of the folder.
:func:`check_gguf` reads the file's header before llama.cpp sees it, because llama.cpp reports every problem as the
same ``ValueError("Failed to load model from file")``.

Nothing here runs at import time and nothing is downloaded unless :func:`download_model` is called.

This module holds the listing, the names and :func:`check_gguf`; the header parsing lives in
:mod:`interstable.llm.gguf`, the hashing in :mod:`interstable.llm.file_hash` and the Hub download (with the default
model's name and hash) in :mod:`interstable.llm.download`. Their public names are re-exported here.
"""

from __future__ import annotations

import functools
import mmap
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from interstable.errors import ConfigError, ModelLoadError, ModelNotFoundError, SettingError
from interstable.llm.download import (
    DEFAULT_FILE,
    DEFAULT_REPO,
    DEFAULT_SHA256,
    DEFAULT_SIZE,
    download_model,
    download_url,
)
from interstable.llm.file_hash import file_sha256
from interstable.llm.gguf import GGUF_MAGIC, GGUFInfo, describe_magic, parse_header

__all__ = [
    "DEFAULT_FILE",
    "DEFAULT_MODELS_SUBDIR",
    "DEFAULT_REPO",
    "DEFAULT_SHA256",
    "DEFAULT_SIZE",
    "GGUFInfo",
    "ModelInfo",
    "check_gguf",
    "default_models_dir",
    "download_model",
    "download_url",
    "file_sha256",
    "list_models",
    "resolve_model",
]

DEFAULT_MODELS_SUBDIR = Path("models") / "LLM"
"""The LLM models folder relative to the WebUI root."""


# --- listing and names ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """One ``.gguf`` file in the models folder.

    Attributes:
        name: The path relative to the models folder with ``/`` separators: what callers pass to
            :func:`resolve_model`.
        path: The file's path.
        size: Size in bytes.
        mtime: Modification time (seconds since the epoch).
    """

    name: str
    path: Path = field(repr=False)
    size: int
    mtime: float = field(repr=False)

    @property
    def sha256(self) -> str:
        """The file's SHA-256, computed on first use (seconds for a 4 GB file) and cached."""
        return file_sha256(self.path)

    @property
    def short_hash(self) -> str:
        """The first 10 hex digits of :attr:`sha256`, as the WebUI shows model hashes."""
        return self.sha256[:10]

    def to_dict(self, *, with_hash: bool = True) -> dict[str, object]:
        """Return a JSON-ready dict (name, size, and the short hash unless ``with_hash`` is false)."""
        data: dict[str, object] = {"name": self.name, "size": self.size}
        if with_hash:
            data["hash"] = self.short_hash
        return data


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def list_models(folder: Path) -> list[ModelInfo]:
    """Return the ``.gguf`` files in ``folder`` and its direct subfolders, sorted by name (case-insensitive).

    Hidden files and folders (``.cache`` holds partial downloads) are skipped, and so are symlinks that lead out of
    the folder. A missing folder gives an empty list; nothing is created.

    Raises:
        ConfigError: ``folder`` exists but is not a folder.
    """
    folder = Path(folder)
    if not folder.exists():
        return []
    if not folder.is_dir():
        raise SettingError("models folder", str(folder), "give a folder that holds .gguf files")
    candidates = [*folder.glob("*.gguf"), *folder.glob("*/*.gguf")]
    found = []
    for path in candidates:
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not _inside(path, folder):
            continue
        try:
            if not path.is_file():
                continue
            stat = path.stat()
        except OSError:
            continue
        found.append(ModelInfo(name=rel.as_posix(), path=path, size=stat.st_size, mtime=stat.st_mtime))
    return sorted(found, key=lambda info: (info.name.casefold(), info.name))


def resolve_model(name: str, folder: Path) -> Path:
    """Return the path of the model called ``name`` in ``folder``.

    ``name`` is a name from :func:`list_models` (``"model.gguf"`` or ``"sub/model.gguf"``; the ``.gguf`` suffix may
    be left out). Paths are refused: absolute ones, drive letters, ``..`` parts, and symlinks whose target is outside
    the folder.

    Raises:
        ConfigError: ``name`` is empty, not a string, or a path rather than a name.
        ModelNotFoundError: No such model in the folder (the message lists the available names).
    """
    fix = "choose a model name from the models list (a file name in the models folder, not a path)"
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise ConfigError("model", name, fix)
    norm = name.strip().replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or PurePosixPath(norm).is_absolute():
        raise ConfigError("model", name, f"absolute paths are not accepted; {fix}")
    if ".." in PurePosixPath(norm).parts:
        raise ConfigError("model", name, f"'..' is not accepted; {fix}")
    folder = Path(folder)
    names = [norm] if norm.lower().endswith(".gguf") else [norm, f"{norm}.gguf"]
    for candidate_name in names:
        candidate = folder / candidate_name
        try:
            found = candidate.is_symlink() or candidate.exists()
        except OSError as exc:  # a name too long for the file system, a loop of symlinks...
            raise ConfigError("model", name, f"it cannot be a file name here ({exc.strerror or exc}); {fix}") from exc
        if found:
            if not _inside(candidate, folder):
                raise ConfigError("model", name, f"it leads outside the models folder {folder} (a symlink?); {fix}")
            if candidate.exists():
                return candidate.resolve()
    available = ", ".join(info.name for info in list_models(folder)) or "none"
    raise ModelNotFoundError(
        f"No model named {name!r} in {folder}. Available: {available}. Put .gguf files into that folder or "
        f"download the default one ({DEFAULT_FILE}) with: python -m interstable download-model"
    )


# --- checking a file --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _check_cached(path_str: str, size: int, mtime_ns: int) -> GGUFInfo:  # size and mtime: the cache key
    path = Path(path_str)
    try:
        fh = open(path, "rb")  # noqa: SIM115, PTH123 (closed below; mmap needs the file object)
    except PermissionError as exc:
        raise ModelLoadError(f"The model file {path} cannot be read (permission denied): {exc}") from exc
    except OSError as exc:
        raise ModelLoadError(f"The model file {path} cannot be opened: {exc}") from exc
    with fh:
        head = fh.read(64)
        if len(head) < 4 or head[:4] != GGUF_MAGIC:
            if not head:
                raise ModelLoadError(f"The model file {path} is empty; delete it and download it again.")
            raise ModelLoadError(f"The model file {path} is {describe_magic(head)}.")
        if size < 24:
            raise ModelLoadError(f"The model file {path} is truncated ({size} bytes); download it again.")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return parse_header(path, buf, size)


def stat_model_file(path: Path) -> os.stat_result:
    """``path.stat()`` with the errors a model file can give, worded for the user.

    Raises:
        ModelNotFoundError: The file does not exist.
        ModelLoadError: It cannot be read (permissions, I/O error).
    """
    try:
        return path.stat()
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"The model file {path} does not exist.") from exc
    except OSError as exc:
        raise ModelLoadError(f"The model file {path} cannot be read: {exc}") from exc


def check_gguf(path: Path) -> GGUFInfo:
    """Check that ``path`` is a complete, readable GGUF file and return what its header says.

    Reads the header (and the tensor table, to find a truncated file) without loading weights; cached by
    (path, size, mtime).

    Raises:
        ModelNotFoundError: The file does not exist.
        ModelLoadError: It is a folder, unreadable, empty, not GGUF (old GGML, HTML, LFS pointer...), truncated, or
            of an unsupported GGUF version. The message says which and what to do.
    """
    path = Path(path)
    stat = stat_model_file(path)
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder, not a GGUF model file.")
    return _check_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def default_models_dir() -> Path:
    """Return the models folder for the command line: ``$INTERSTABLE_LLM_DIR`` or ``./models/LLM``."""
    return Path(os.environ.get("INTERSTABLE_LLM_DIR") or DEFAULT_MODELS_SUBDIR)
