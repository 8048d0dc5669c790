"""What a prompt writer knows about its GGUF file: path, display name and short hash, and ``with`` support.

Shared by the in-process writer (:class:`interstable.llm.writer.LlamaPromptWriter`) and the one whose model lives in
a worker process (:class:`interstable.llm.worker.ProcessPromptWriter`); the infotext's ``InterStable LLM model`` and
``InterStable LLM hash`` come from here, so both backends record a model the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from interstable.errors import ModelNotFoundError
from interstable.llm.file_hash import file_sha256

__all__ = ["ModelFileWriter"]

_Writer = TypeVar("_Writer", bound="ModelFileWriter")  # typing.Self needs Python 3.11; A1111 runs on 3.10


class ModelFileWriter:
    """Base of the writers that load a model file: subclasses set ``self._path`` and implement ``close()``."""

    _path: Path

    def __enter__(self: _Writer) -> _Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Free the model (subclasses)."""
        raise NotImplementedError

    @property
    def model_path(self) -> Path:
        """The model file."""
        return self._path

    @property
    def model_name(self) -> str:
        """The model's file name without ``.gguf`` (for infotext)."""
        return self._path.name[:-5] if self._path.name.lower().endswith(".gguf") else self._path.name

    @property
    def model_hash(self) -> str:
        """The first 10 hex digits of the file's SHA-256 (computed on first use, then cached)."""
        try:
            return file_sha256(self._path)[:10]
        except FileNotFoundError as exc:
            raise ModelNotFoundError(f"The model file {self._path} does not exist.") from exc
