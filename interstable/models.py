"""LLM model files: finding ``.gguf`` files in a folder the caller hands in, checking them, fetching the default one.

Callers choose models by *name* (a path relative to the models folder, as :func:`list_models` reports it), never by
an arbitrary path: :func:`resolve_model` refuses ``..``, absolute paths and symlinks that lead out of the folder.
:func:`check_gguf` reads the file's header before llama.cpp sees it, because llama.cpp reports every problem as the
same ``ValueError("Failed to load model from file")``.

Nothing here runs at import time and nothing is downloaded unless :func:`download_model` is called.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import mmap
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import ClassVar

from interstable.errors import ConfigError, ModelLoadError, ModelNotFoundError

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

logger = logging.getLogger("interstable")

DEFAULT_MODELS_SUBDIR = Path("models") / "LLM"
"""The LLM models folder relative to the WebUI root."""
DEFAULT_REPO = "TheBloke/Mistral-7B-Instruct-v0.2-GGUF"
DEFAULT_FILE = "mistral-7b-instruct-v0.2.Q4_K_M.gguf"
DEFAULT_SHA256 = "3e0039fd0273fcbebb49228943b17831aadd55cbcbf56f0af00499be2040ccf9"
"""SHA-256 of :data:`DEFAULT_FILE` (its Git LFS object id on the Hugging Face Hub)."""
DEFAULT_SIZE = 4_368_439_584
"""Size in bytes of :data:`DEFAULT_FILE`."""

GGUF_MAGIC = b"GGUF"
_HASH_CHUNK = 8 * 1024 * 1024


def download_url(repo: str = DEFAULT_REPO, filename: str = DEFAULT_FILE) -> str:
    """Return the URL a browser can download ``filename`` of ``repo`` from."""
    return f"https://huggingface.co/{repo}/resolve/main/{filename}"


# --- hashing ------------------------------------------------------------------------------------------------------


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


# --- listing and names --------------------------------------------------------------------------------------------


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
        raise ConfigError("models folder", str(folder), "give a folder that holds .gguf files")
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


# --- the GGUF header ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GGUFInfo:
    """What the GGUF header says (read without llama.cpp).

    Attributes:
        path: The file.
        size: File size in bytes.
        version: GGUF format version.
        architecture: ``general.architecture`` (for example ``"llama"``).
        name: ``general.name`` or "".
        n_layers: ``{arch}.block_count`` (0 if absent).
        context_length: ``{arch}.context_length`` (0 if absent).
        chat_template: ``tokenizer.chat_template`` or None.
        n_tensors: Number of tensors.
        data_end: The file size the tensor table needs (0 when a tensor type was unknown, so it was not checked).
    """

    path: Path
    size: int
    version: int
    architecture: str
    name: str
    n_layers: int
    context_length: int
    chat_template: str | None
    n_tensors: int
    data_end: int


class _Truncated(Exception):  # noqa: N818 (internal signal)
    pass


class _Reader:
    """Little-endian reads from a buffer, raising :class:`_Truncated` at its end."""

    # GGUF metadata value type -> struct format (8 = string and 9 = array are read separately)
    _FIXED: ClassVar[dict[int, str]] = {
        0: "B",
        1: "b",
        2: "H",
        3: "h",
        4: "I",
        5: "i",
        6: "f",
        7: "?",
        10: "Q",
        11: "q",
        12: "d",
    }

    def __init__(self, buf: mmap.mmap | bytes) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str) -> int | float | bool:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buf):
            raise _Truncated
        (value,) = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = int(self.unpack("Q"))
        if self.pos + length > len(self.buf):
            raise _Truncated
        value = bytes(self.buf[self.pos : self.pos + length]).decode("utf-8", errors="replace")
        self.pos += length
        return value

    def skip_string(self) -> None:
        length = int(self.unpack("Q"))
        self.pos += length
        if self.pos > len(self.buf):
            raise _Truncated

    def value(self, vtype: int, *, keep: bool) -> object:
        if vtype in self._FIXED:
            return self.unpack(self._FIXED[vtype])
        if vtype == 8:
            if keep:
                return self.string()
            self.skip_string()
            return None
        if vtype == 9:
            etype, count = int(self.unpack("I")), int(self.unpack("Q"))
            if etype in self._FIXED:
                self.pos += count * struct.calcsize("<" + self._FIXED[etype])
                if self.pos > len(self.buf):
                    raise _Truncated
            else:
                for _ in range(count):
                    self.value(etype, keep=False)
            return None
        raise ValueError(f"unknown metadata value type {vtype}")


def _type_sizes() -> dict[int, tuple[int, int]]:
    """Return ggml type -> (block size, bytes per block) from the ``gguf`` package, or {} without it."""
    try:
        from gguf.constants import GGML_QUANT_SIZES
    except ImportError:
        return {}
    return {int(k): (int(v[0]), int(v[1])) for k, v in GGML_QUANT_SIZES.items()}


def _describe_magic(head: bytes) -> str:
    if head.startswith((b"tjgg", b"lmgg", b"fmgg", b"ggjt", b"ggml")):
        return "an old GGML file; llama.cpp needs GGUF: download the .gguf version of the model"
    if head.startswith(b"PK"):
        return "a zip/PyTorch checkpoint, not a GGUF file"
    if head.lstrip().lower().startswith((b"<!doctype", b"<html")):
        return "an HTML page, probably a failed download; download the file again"
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the model itself; download the real file"
    if len(head) >= 9 and head[8:9] == b"{":
        return "a safetensors file, not a GGUF file"
    return f"not a GGUF file (it starts with {head[:4]!r} instead of b'GGUF')"


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
            raise ModelLoadError(f"The model file {path} is {_describe_magic(head)}.")
        if size < 24:
            raise ModelLoadError(f"The model file {path} is truncated ({size} bytes); download it again.")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse_header(path, buf, size)


def _parse_header(path: Path, buf: mmap.mmap, size: int) -> GGUFInfo:
    reader = _Reader(buf)
    truncated = ModelLoadError(
        f"The model file {path} is truncated or damaged ({size:,} bytes; its header or tensor data is cut off). "
        "An interrupted download is the usual cause: delete the file and download it again."
    )
    try:
        reader.pos = 4
        version = int(reader.unpack("I"))
        if version not in (2, 3):
            raise ModelLoadError(f"The model file {path} is GGUF version {version}; only versions 2 and 3 load.")
        n_tensors, n_kv = int(reader.unpack("Q")), int(reader.unpack("Q"))
        if n_tensors > 1_000_000 or n_kv > 1_000_000:
            raise truncated
        meta: dict[str, object] = {}
        wanted = re.compile(
            r"general\.(architecture|name|alignment)|tokenizer\.chat_template|[\w.]+\.(block_count|context_length)"
        )
        for _ in range(n_kv):
            key = reader.string()
            vtype = int(reader.unpack("I"))
            value = reader.value(vtype, keep=wanted.fullmatch(key) is not None)
            if value is not None:
                meta[key] = value
        sizes = _type_sizes()
        data_size = 0
        for _ in range(n_tensors):
            reader.skip_string()
            n_dims = int(reader.unpack("I"))
            if n_dims > 8:
                raise truncated
            elements = 1
            for _ in range(n_dims):
                elements *= int(reader.unpack("Q"))
            ggml_type, offset = int(reader.unpack("I")), int(reader.unpack("Q"))
            if data_size >= 0 and ggml_type in sizes:
                block, nbytes = sizes[ggml_type]
                data_size = max(data_size, offset + elements // block * nbytes)
            else:
                data_size = -1
    except (_Truncated, ValueError, struct.error) as exc:
        raise truncated from exc
    alignment = int(meta.get("general.alignment", 32) or 32)  # type: ignore[call-overload]
    data_start = -(-reader.pos // alignment) * alignment
    data_end = data_start + data_size if data_size >= 0 else 0
    if data_end > size or data_start > size:
        raise truncated
    arch = str(meta.get("general.architecture", ""))
    template = meta.get("tokenizer.chat_template")
    return GGUFInfo(
        path=path,
        size=size,
        version=version,
        architecture=arch,
        name=str(meta.get("general.name", "")),
        n_layers=int(meta.get(f"{arch}.block_count", 0) or 0),  # type: ignore[call-overload]
        context_length=int(meta.get(f"{arch}.context_length", 0) or 0),  # type: ignore[call-overload]
        chat_template=str(template) if isinstance(template, str) and template else None,
        n_tensors=n_tensors,
        data_end=data_end,
    )


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
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"The model file {path} does not exist.") from exc
    except OSError as exc:
        raise ModelLoadError(f"The model file {path} cannot be read: {exc}") from exc
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder, not a GGUF model file.")
    return _check_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


# --- download -----------------------------------------------------------------------------------------------------


def _progress_tqdm(on_progress: Callable[[int, int], None]) -> type:
    """Return a tqdm class for ``hf_hub_download(tqdm_class=...)`` that reports (bytes done, bytes total)."""
    from tqdm.auto import tqdm

    class _Progress(tqdm):  # type: ignore[misc,valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self._done = int(kwargs.get("initial", 0) or 0)  # type: ignore[call-overload]
            self._total = int(kwargs.get("total", 0) or 0)  # type: ignore[call-overload]

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            on_progress(self._done, self._total)
            return super().update(n)

    return _Progress


def _manual_hint(folder: Path, repo: str, filename: str) -> str:
    folder = Path(folder).absolute()
    return (
        f"To install it by hand, download {download_url(repo, filename)} in a browser and save it as "
        f"{Path(folder) / filename} (folder {Path(folder)}, file name {filename})."
    )


_NOT_FOUND_ERRORS = {
    "RepositoryNotFoundError",
    "EntryNotFoundError",
    "RemoteEntryNotFoundError",
    "RevisionNotFoundError",
    "GatedRepoError",
}


def download_model(
    folder: Path,
    *,
    repo: str = DEFAULT_REPO,
    filename: str = DEFAULT_FILE,
    sha256: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    token: str | None = None,
) -> Path:
    """Download a GGUF file into ``folder`` with ``huggingface_hub.hf_hub_download`` and verify its SHA-256.

    Only ever called on an explicit request (a button, the ``download-model`` command). The download resumes where
    an interrupted one stopped; a file that is already complete is not fetched again.

    Args:
        folder: The models folder (created if missing).
        repo: The Hub repository.
        filename: The file in the repository (a plain ``.gguf`` file name).
        sha256: The expected SHA-256; defaults to :data:`DEFAULT_SHA256` for the default file and to no check for
            others (the hub still checks the download against its own record).
        on_progress: Called with (bytes done, bytes total) while downloading (total may be 0 when unknown).
        token: A Hub token for gated repositories.

    Returns:
        The path of the verified file.

    Raises:
        ConfigError: ``filename`` is not a plain ``.gguf`` file name.
        ModelNotFoundError: Offline, unreachable, not on the Hub, or ``huggingface_hub`` missing; the message says
            where to put the file by hand.
        ModelLoadError: The SHA-256 does not match (the bad file is deleted).
    """
    if not isinstance(filename, str) or "/" in filename or "\\" in filename or not filename.endswith(".gguf"):
        raise ConfigError("file", filename, "give a plain .gguf file name from the repository")
    folder = Path(folder)
    expected = (
        sha256 if sha256 is not None else (DEFAULT_SHA256 if (repo, filename) == (DEFAULT_REPO, DEFAULT_FILE) else None)
    )
    expected = expected.lower() if expected else None
    target = folder / filename
    if expected and target.is_file() and file_sha256(target) == expected:
        logger.info("%s is already downloaded and verified", target)
        return target
    try:
        import huggingface_hub
    except ImportError as exc:
        raise ModelNotFoundError(
            f"Cannot download {filename}: the huggingface_hub package is not installed (pip install huggingface_hub). "
            + _manual_hint(folder, repo, filename)
        ) from exc
    folder.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, object] = {"repo_id": repo, "filename": filename, "local_dir": str(folder)}
    if token:
        kwargs["token"] = token
    download = huggingface_hub.hf_hub_download
    if on_progress is not None:
        try:
            accepts_tqdm = "tqdm_class" in inspect.signature(download).parameters
        except (TypeError, ValueError):
            accepts_tqdm = False
        if accepts_tqdm:
            kwargs["tqdm_class"] = _progress_tqdm(on_progress)
    logger.info("Downloading %s from %s into %s", filename, repo, folder)
    try:
        path = Path(download(**kwargs))
    except Exception as exc:
        if type(exc).__name__ in _NOT_FOUND_ERRORS:
            raise ModelNotFoundError(
                f"{filename} was not found in the Hub repository {repo} ({type(exc).__name__}). Check --repo/--file. "
                + _manual_hint(folder, repo, filename)
            ) from exc
        raise ModelNotFoundError(
            f"Could not download {filename} from {repo} (offline or unreachable: {type(exc).__name__}: {exc}). "
            + _manual_hint(folder, repo, filename)
        ) from exc
    if expected:
        actual = file_sha256(path)
        if actual != expected:
            path.unlink(missing_ok=True)
            raise ModelLoadError(
                f"The downloaded {filename} has SHA-256 {actual}, expected {expected}; the file was deleted. "
                "Try again; if it keeps failing, the file on the Hub changed: " + _manual_hint(folder, repo, filename)
            )
    logger.info("Downloaded %s (%s bytes)", path, f"{path.stat().st_size:,}")
    return path


def default_models_dir() -> Path:
    """Return the models folder for the command line: ``$INTERSTABLE_LLM_DIR`` or ``./models/LLM``."""
    return Path(os.environ.get("INTERSTABLE_LLM_DIR") or DEFAULT_MODELS_SUBDIR)
