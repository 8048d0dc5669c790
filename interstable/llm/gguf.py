"""Reading GGUF files without llama.cpp: the header (:class:`GGUFInfo`) and the tensor table.

:func:`parse_header` reads the metadata llama.cpp needs and checks the tensor table against the file size (a
truncated download is the usual broken file); :func:`describe_magic` names what a file that is not GGUF is instead;
:func:`tensor_sizes` gives each tensor's size for the GPU layer choice. Only the header is read, through an ``mmap``;
weights are never loaded. :func:`interstable.llm.models.check_gguf` opens the file and calls these; the ``gguf`` package
is used only when installed, and only for its table of quantization sizes.
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from interstable.errors import ModelLoadError

__all__ = ["GGUF_MAGIC", "GGUFInfo", "describe_magic", "parse_header", "tensor_sizes"]

GGUF_MAGIC = b"GGUF"


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


def describe_magic(head: bytes) -> str:
    """Say what a file whose first bytes are ``head`` is, when it is not GGUF (for the error message)."""
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


def parse_header(path: Path, buf: mmap.mmap, size: int) -> GGUFInfo:
    """Read the header and tensor table of the GGUF file ``path`` (mapped as ``buf``, ``size`` bytes long).

    Raises:
        ModelLoadError: The file is truncated or damaged, or of a GGUF version other than 2 or 3.
    """
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


def tensor_sizes(path: Path, size: int) -> list[tuple[str, int]]:
    """Return (name, bytes) of every tensor in a GGUF file, from the distances between the tensors' data offsets.

    Needs no table of quantization types (padding of up to ``general.alignment`` bytes counts with the tensor
    before it) and skips the vocabulary without building it (a Llama 3 file has 400k strings there).
    """
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        reader = _Reader(buf)
        reader.pos = 8
        n_tensors, n_kv = int(reader.unpack("Q")), int(reader.unpack("Q"))
        alignment = 32
        for _ in range(n_kv):
            key = reader.string()
            value = reader.value(int(reader.unpack("I")), keep=key == "general.alignment")
            if key == "general.alignment" and isinstance(value, int) and value > 0:
                alignment = value
        table = []
        for _ in range(n_tensors):
            name = reader.string()
            n_dims = int(reader.unpack("I"))
            reader.pos += 8 * n_dims + 4  # the dimensions, then the ggml type
            table.append((int(reader.unpack("Q")), name))
        data_start = -(-reader.pos // alignment) * alignment
    table.sort()
    ends = [offset for offset, _ in table[1:]] + [size - data_start]
    return [(name, end - offset) for (offset, name), end in zip(table, ends, strict=True)]
