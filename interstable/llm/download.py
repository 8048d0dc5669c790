"""Downloading GGUF files from the Hugging Face Hub: the default model and :func:`download_model`.

Nothing is downloaded unless :func:`download_model` is called, and ``huggingface_hub`` and ``tqdm`` are imported
only then. Every failure is a :class:`~interstable.errors.ModelNotFoundError` that says where to put the file by
hand. Re-exported by :mod:`interstable.llm.models`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path

from interstable.errors import ConfigError, ModelLoadError, ModelNotFoundError
from interstable.llm.file_hash import file_sha256

__all__ = [
    "DEFAULT_FILE",
    "DEFAULT_REPO",
    "DEFAULT_SHA256",
    "DEFAULT_SIZE",
    "download_model",
    "download_url",
]

logger = logging.getLogger("interstable")

DEFAULT_REPO = "TheBloke/Mistral-7B-Instruct-v0.2-GGUF"
DEFAULT_FILE = "mistral-7b-instruct-v0.2.Q4_K_M.gguf"
DEFAULT_SHA256 = "3e0039fd0273fcbebb49228943b17831aadd55cbcbf56f0af00499be2040ccf9"
"""SHA-256 of :data:`DEFAULT_FILE` (its Git LFS object id on the Hugging Face Hub)."""
DEFAULT_SIZE = 4_368_439_584
"""Size in bytes of :data:`DEFAULT_FILE`."""


def download_url(repo: str = DEFAULT_REPO, filename: str = DEFAULT_FILE) -> str:
    """Return the URL a browser can download ``filename`` of ``repo`` from."""
    return f"https://huggingface.co/{repo}/resolve/main/{filename}"


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
