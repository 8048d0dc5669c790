"""Installs InterStable's runtime dependencies into the WebUI's Python.

The WebUI runs this file in a subprocess at every launch (unless ``--skip-install``) and after "Install from URL".
It checks distributions by name, installs only what is missing through ``launch.run_pip``, never installs what the
host owns (torch, gradio, transformers, numpy, Pillow), and never fails the launch: a problem prints one actionable
line and the WebUI starts anyway (the script then explains what is missing when it is used).
"""

import importlib.metadata
import os
import re
import sys

# distribution name -> pip requirement
REQUIREMENTS = {
    "llama-cpp-python": "llama-cpp-python>=0.3.2",
    "clip-interrogator": "clip-interrogator>=0.6.0",
    "gguf": "gguf>=0.10",
}

# Any of these already provides ``import onnxruntime`` (the WD tagger); none is ever replaced.
ONNXRUNTIME_DISTS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-directml",
    "onnxruntime-openvino",
    "onnxruntime-silicon",
    "onnxruntime-qnn",
)

# Prebuilt llama-cpp-python wheels (building from source needs a C++ compiler and takes a long time).
WHEEL_INDEX = "https://abetlen.github.io/llama-cpp-python/whl/{variant}"
CUDA_VARIANTS = ("cu121", "cu122", "cu123", "cu124", "cu125")


def is_installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def llama_wheel_variant() -> str:
    """The prebuilt-wheel flavour matching the WebUI's torch (``cu121`` ...), or ``cpu``."""
    override = os.environ.get("INTERSTABLE_LLAMA_WHEEL_VARIANT")
    if override:
        return override
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "cpu"
    match = re.search(r"\+cu(\d+)", torch_version)
    if not match:
        return "cpu"
    wanted = f"cu{match.group(1)}"
    return wanted if wanted in CUDA_VARIANTS else CUDA_VARIANTS[-1]


def onnxruntime_requirement(installed=is_installed) -> str | None:
    """The onnxruntime for the WD tagger (``onnxruntime-gpu`` beside a CUDA torch); None when one is there."""
    if any(installed(dist) for dist in ONNXRUNTIME_DISTS):
        return None
    return "onnxruntime-gpu" if llama_wheel_variant().startswith("cu") else "onnxruntime"


def pip_command(dist: str) -> str:
    if dist.startswith("onnxruntime"):
        return f'install "{dist}"'
    requirement = REQUIREMENTS[dist]
    if dist == "llama-cpp-python" and sys.platform != "darwin":
        index = os.environ.get("INTERSTABLE_LLAMA_INDEX_URL") or WHEEL_INDEX.format(variant=llama_wheel_variant())
        return f'install "{requirement}" --extra-index-url {index}'
    return f'install "{requirement}"'


def main() -> int:
    try:
        import launch
    except ImportError:
        print(
            "[InterStable] install.py is run by the WebUI; to install by hand: pip install "
            + " ".join(f'"{r}"' for r in REQUIREMENTS.values())
        )
        return 0
    onnx = onnxruntime_requirement(lambda dist: is_installed(dist) or launch.is_installed(dist))
    for dist in [*REQUIREMENTS, *([onnx] if onnx else [])]:
        if is_installed(dist) or launch.is_installed(dist):
            continue
        try:
            launch.run_pip(pip_command(dist), f"InterStable requirement: {dist}")
        except Exception as exc:  # never break the WebUI launch
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(
                f"[InterStable] could not install {dist} ({first}); the WebUI starts without it. Fix: run "
                f"'{sys.executable} -m pip {pip_command(dist)}' in the WebUI's Python, then restart the WebUI."
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
