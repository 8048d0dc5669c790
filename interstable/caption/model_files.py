"""Where the WD tagger and the vision model files live, and their download (only ever on request).

Taggers sit in the tagger folder (the WebUI's ``models/wd-tagger``), one subfolder each holding ``model.onnx`` and
``selected_tags.csv`` as the Hub repositories ship them (a folder holding the two files directly also works).
Vision models sit in the LLM models folder next to their projector
(:mod:`interstable.caption.vision_models`).

:func:`download_default_tagger` and :func:`download_default_vision` fetch the defaults with
``huggingface_hub.hf_hub_download`` (it resumes an interrupted download) and check each file against a SHA-256:
:data:`DEFAULT_TAGGER` / :data:`DEFAULT_VISION`'s where one is pinned, else the one the Hub publishes for a Git LFS
file (its ETag, read over HTTPS with ``get_hf_file_metadata`` before the download). Offline, the error says which
files to put where by hand.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from interstable.caption.wd_tagger import MODEL_FILE, TAGS_FILE
from interstable.errors import ConfigError, ModelLoadError, ModelNotFoundError

__all__ = [
    "DEFAULT_TAGGER",
    "DEFAULT_VISION",
    "ModelFiles",
    "download_default_tagger",
    "download_default_vision",
    "download_files",
    "list_taggers",
    "resolve_tagger",
]


@dataclass(frozen=True)
class ModelFiles:
    """Files of one Hub repository: ``{file name: SHA-256 or None}`` (None: the SHA-256 the Hub publishes for the
    file is checked instead, when it publishes one)."""

    repo: str
    files: Mapping[str, str | None]
    folder_name: str = ""


DEFAULT_TAGGER = ModelFiles(
    "SmilingWolf/wd-vit-tagger-v3", {MODEL_FILE: None, TAGS_FILE: None}, folder_name="wd-vit-tagger-v3"
)
"""The default tagger (about 380 MB). Its SHA-256s are not pinned yet: no Hub was reachable when this was written."""
DEFAULT_VISION = ModelFiles(
    "ggml-org/Qwen2.5-VL-3B-Instruct-GGUF",
    {"Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf": None, "mmproj-Qwen2.5-VL-3B-Instruct-Q8_0.gguf": None},
)
"""The default vision model and its projector (about 2.7 GB); SHA-256s not pinned yet, as for the tagger."""


def _is_tagger(folder: Path) -> bool:
    return (folder / MODEL_FILE).is_file() and (folder / TAGS_FILE).is_file()


def list_taggers(folder: Path) -> list[str]:
    """The tagger subfolders of ``folder`` (``"."`` when it holds a tagger itself), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = ["."] if _is_tagger(folder) else []
    found += sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and _is_tagger(p))
    return found


def resolve_tagger(name: str, folder: Path) -> Path:
    """The tagger folder called ``name`` in ``folder``; ``""`` takes the default tagger, else the first one.

    Raises:
        ConfigError: ``name`` leaves the folder.
        ModelNotFoundError: No such tagger (the message says what to put where).
    """
    folder = Path(folder)
    wanted = name.strip().replace("\\", "/")
    if wanted.startswith("/") or ".." in Path(wanted).parts or "/" in wanted:
        raise ConfigError("tagger model", name, f"give the name of a folder inside {folder}")
    found = list_taggers(folder)
    if not wanted:
        if DEFAULT_TAGGER.folder_name in found:
            return folder / DEFAULT_TAGGER.folder_name
        if found:
            return folder / found[0]
    elif wanted in found:
        return folder / wanted
    hint = (
        f"put {MODEL_FILE} and {TAGS_FILE} from https://huggingface.co/{DEFAULT_TAGGER.repo} into "
        f"{folder.absolute() / (wanted or DEFAULT_TAGGER.folder_name)}"
    )
    there = f" (there: {', '.join(found)})" if found else ""
    raise ModelNotFoundError(f"no WD tagger {wanted or '(default)'} in {folder}{there}: {hint}")


def download_files(
    spec: ModelFiles,
    folder: Path,
    *,
    on_progress: Callable[[str, int, int], None] | None = None,
    token: str | None = None,
) -> list[Path]:
    """Download every file of ``spec`` into ``folder`` (resuming), check each against its pinned SHA-256 or the Hub's
    LFS SHA-256, return the paths.

    Raises:
        ModelNotFoundError: Offline, unreachable or missing on the Hub (the message names the files and the folder).
        ModelLoadError: A file's SHA-256 does not match (it is deleted).
    """
    folder = Path(folder)
    by_hand = (
        f"To install by hand, download {', '.join(spec.files)} from https://huggingface.co/{spec.repo} in a browser "
        f"and save them in {folder.absolute()}."
    )
    try:
        import huggingface_hub
    except ImportError as exc:
        raise ModelNotFoundError(f"huggingface_hub is not installed (pip install huggingface_hub). {by_hand}") from exc
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for filename, pinned in spec.files.items():
        target = folder / filename
        if pinned and target.is_file() and file_sha256(target) == pinned:
            paths.append(target)
            continue
        if on_progress is not None:
            on_progress(filename, 0, 0)
        expected = pinned or _hub_sha256(huggingface_hub, spec.repo, filename, token)
        try:
            kwargs: dict[str, object] = {"repo_id": spec.repo, "filename": filename, "local_dir": str(folder)}
            if token:
                kwargs["token"] = token
            path = Path(huggingface_hub.hf_hub_download(**kwargs))
        except Exception as exc:
            raise ModelNotFoundError(
                f"Could not download {filename} from {spec.repo} ({type(exc).__name__}: {exc}). {by_hand}"
            ) from exc
        if expected and file_sha256(path) != expected:
            path.unlink(missing_ok=True)
            raise ModelLoadError(f"{filename} from {spec.repo} has the wrong SHA-256; it was deleted. {by_hand}")
        paths.append(path)
    return paths


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _hub_sha256(huggingface_hub: object, repo: str, filename: str, token: str | None) -> str | None:
    """The SHA-256 the Hub publishes for a Git LFS file (its ETag); None for a small file kept in Git (its ETag is a
    Git object id) or when the Hub cannot be asked (the download then fails with its own message)."""
    try:
        url = huggingface_hub.hf_hub_url(repo, filename)  # type: ignore[attr-defined]
        etag = huggingface_hub.get_hf_file_metadata(url, token=token, timeout=20).etag  # type: ignore[attr-defined]
    except Exception:
        return None
    return etag if isinstance(etag, str) and _SHA256.fullmatch(etag) else None


def file_sha256(path: Path) -> str:
    """The SHA-256 of ``path`` in hex."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_default_tagger(tagger_dir: Path, **kwargs: object) -> Path:
    """Download :data:`DEFAULT_TAGGER` into ``tagger_dir/wd-vit-tagger-v3``; return that folder."""
    target = Path(tagger_dir) / DEFAULT_TAGGER.folder_name
    download_files(DEFAULT_TAGGER, target, **kwargs)  # type: ignore[arg-type]
    return target


def download_default_vision(llm_dir: Path, **kwargs: object) -> list[Path]:
    """Download :data:`DEFAULT_VISION` (model and projector) into ``llm_dir``."""
    return download_files(DEFAULT_VISION, Path(llm_dir), **kwargs)  # type: ignore[arg-type]
