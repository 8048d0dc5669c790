"""Seeds for the random parts of the pipeline, derived from each image's own seed.

The WebUI assigns one seed per output image (``p.all_seeds[i]``). Lines and the LLM each get their own stream derived
from it, so changing the line settings never changes the LLM's randomness and a result is reproducible from the
seed recorded in its infotext.
"""

from __future__ import annotations

import hashlib

__all__ = ["SEED_MAX", "derive_seed"]

SEED_MAX = 2**32 - 1
"""The largest seed; llama.cpp and numpy both take unsigned 32-bit seeds."""


def derive_seed(image_seed: int, purpose: str) -> int:
    """Return a stable 32-bit seed for ``purpose`` (for example ``"lines"`` or ``"llm"``) from an image seed.

    The mapping is a hash, so it is the same on every platform and Python version, and nearby image seeds give
    unrelated results.

    Args:
        image_seed: The image's seed as the WebUI assigned it (any integer, negative ones included).
        purpose: A short name of the random stream.

    Returns:
        An integer in ``[0, SEED_MAX]``.
    """
    digest = hashlib.blake2b(f"{purpose}:{int(image_seed)}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")
