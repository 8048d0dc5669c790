"""Real CLIP token counts without torch: a small pure-Python BPE over CLIP's own merges file.

Stable Diffusion's text encoders (SD1 and SDXL's CLIP ViT-L/14 and OpenCLIP bigG) share one BPE: 49152 merges in
``bpe_simple_vocab_16e6.txt.gz``, which open_clip ships (the WebUI installs open_clip; so does clip-interrogator).
:func:`clip_token_counter` finds that file without importing open_clip (which imports torch) and counts tokens as
``open_clip.tokenizer.SimpleTokenizer.encode`` does, without the start and end tokens (ftfy's mojibake repair is
skipped; it changes nothing in plain text). Without the file it returns None and callers fall back to
:func:`interstable.prompt.approx_clip_tokens`.
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["BPE_FILE_NAME", "ClipBPE", "byte_encoder", "clip_token_counter", "find_bpe_file", "read_merges"]

logger = logging.getLogger("interstable")

BPE_FILE_NAME = "bpe_simple_vocab_16e6.txt.gz"
_N_MERGES = 49152 - 256 - 2


def _pattern():  # regex knows \p{L}; re gets the same classes spelled with \w
    try:
        import regex

        return regex.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE,
        )
    except ImportError:
        import re

        return re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+""", re.IGNORECASE)


def read_merges(path: Path | str) -> list[tuple[str, str]]:
    """Return the merges CLIP uses from its merges file (the first 49152 - 256 - 2, in rank order)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")[1 : _N_MERGES + 1]
    return [(first, second) for first, second in (line.split() for line in lines)]


@functools.lru_cache(maxsize=1)
def byte_encoder() -> dict[int, str]:
    """CLIP's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


class ClipBPE:
    """CLIP's byte-level BPE over a merges file (see the module docstring); :meth:`count` is the public use."""

    def __init__(self, path: Path | str) -> None:
        self._ranks = {pair: i for i, pair in enumerate(read_merges(path))}
        self._pattern = _pattern()
        self._bpe = functools.lru_cache(maxsize=20000)(self._bpe_uncached)

    def _bpe_uncached(self, token: str) -> int:
        word = (*token[:-1], token[-1] + "</w>")
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self._ranks.get(p, float("inf")))
            if best not in self._ranks:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        return len(word)

    def count(self, text: str) -> int:
        """Return CLIP's token count of ``text`` (no start/end tokens)."""
        if not isinstance(text, str):
            return 0
        text = " ".join(html.unescape(html.unescape(text)).split()).lower()
        enc = byte_encoder()
        return sum(self._bpe("".join(enc[b] for b in piece.encode("utf-8"))) for piece in self._pattern.findall(text))


def find_bpe_file() -> Path | None:
    """Return CLIP's merges file: ``$INTERSTABLE_CLIP_BPE``, else the copy open_clip ships (found, not imported)."""
    env = os.environ.get("INTERSTABLE_CLIP_BPE")
    if env and Path(env).is_file():
        return Path(env)
    for package in ("open_clip", "clip"):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        for folder in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(folder) / BPE_FILE_NAME
            if candidate.is_file():
                return candidate
    return None


@functools.lru_cache(maxsize=1)
def clip_token_counter() -> Callable[[str], int] | None:
    """Return a function counting real CLIP tokens, or None when CLIP's merges file is not installed."""
    path = find_bpe_file()
    if path is None:
        logger.info("CLIP's %s was not found; token counts are estimated", BPE_FILE_NAME)
        return None
    return ClipBPE(path).count
