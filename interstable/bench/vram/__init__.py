"""``python -m interstable.bench vram``: peak GPU memory per stage and during sampling, for each memory policy.

The command (and its full description, ``--help``) is in :mod:`interstable.bench.vram.command`; the meters and the
stand-ins for SD, the host and the captioner in :mod:`interstable.bench.vram.standins`.
"""

from interstable.bench.vram.command import register, run

__all__ = ["register", "run"]
