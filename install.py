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

# Prebuilt llama-cpp-python wheels (building from source needs a C++ compiler and takes 10-20 minutes). The CUDA
# indexes that have long existed are cu121-cu124, each with wheels for some llama-cpp-python versions only; a newer
# CUDA 12 runs the cu124 build (CUDA's minor-version compatibility). CUDA 11 and anything else get the CPU build.
WHEEL_INDEX = "https://abetlen.github.io/llama-cpp-python/whl/{variant}"
CUDA_VARIANTS = ("cu121", "cu122", "cu123", "cu124")
CUDA_BUILD_HINT = (
    'CMAKE_ARGS="-DGGML_CUDA=on" {python} -m pip install --force-reinstall --no-cache-dir "llama-cpp-python>=0.3.2"'
)


def is_installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def llama_wheel_variant() -> str:
    """The prebuilt-wheel index matching the WebUI's torch (``cu121`` ... ``cu124``), or ``cpu``."""
    return wheel_choice()[0]


def wheel_choice() -> tuple[str, str | None]:
    """The wheel index variant and, when it is not what the WebUI's torch would want, a line that says why."""
    override = os.environ.get("INTERSTABLE_LLAMA_WHEEL_VARIANT")
    if override:
        return override, None
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "cpu", None
    match = re.search(r"\+cu(\d+)", torch_version)
    if not match:
        return "cpu", None
    wanted = f"cu{match.group(1)}"
    if wanted in CUDA_VARIANTS:
        return wanted, None
    if wanted.startswith("cu12") and wanted > CUDA_VARIANTS[-1]:
        return CUDA_VARIANTS[-1], None
    hint = CUDA_BUILD_HINT.format(python=sys.executable)
    return "cpu", (
        f"[InterStable] there is no prebuilt llama-cpp-python for the WebUI's CUDA ({wanted}): installing the CPU "
        f"build (the LLM runs on the CPU; SD keeps the GPU). For GPU offload build it with CUDA: {hint}"
    )


def onnxruntime_requirement(installed=is_installed) -> str | None:
    """The onnxruntime for the WD tagger (``onnxruntime-gpu`` beside a CUDA torch); None when one is there."""
    if any(installed(dist) for dist in ONNXRUNTIME_DISTS):
        return None
    return "onnxruntime-gpu" if llama_wheel_variant().startswith("cu") else "onnxruntime"


def pip_command(dist: str, *, variant: str | None = None, wheel_only: bool = True) -> str:
    """The ``pip`` arguments for ``dist``; llama-cpp-python comes from the prebuilt wheels of ``variant`` (by
    default the WebUI torch's), and ``wheel_only`` makes pip fail at once instead of building from source."""
    if dist.startswith("onnxruntime"):
        return f'install "{dist}"'
    requirement = REQUIREMENTS[dist]
    if dist == "llama-cpp-python" and sys.platform != "darwin":
        index = os.environ.get("INTERSTABLE_LLAMA_INDEX_URL") or WHEEL_INDEX.format(
            variant=variant or wheel_choice()[0]
        )
        binary = " --only-binary llama-cpp-python" if wheel_only else ""
        return f'install "{requirement}" --extra-index-url {index}{binary}'
    return f'install "{requirement}"'


def install_llama(launch) -> None:
    """llama-cpp-python: a prebuilt wheel for the WebUI's CUDA, else the CPU wheel, else a source build with pip's
    output shown (it takes 10-20 minutes and needs a C++ compiler), never silently."""
    variant, note = wheel_choice()
    if note:
        print(note)
    attempts = [variant] + (["cpu"] if variant != "cpu" else [])
    for choice in attempts:
        try:
            launch.run_pip(
                pip_command("llama-cpp-python", variant=choice),
                f"InterStable requirement: llama-cpp-python ({choice} wheel)",
            )
            return
        except Exception as exc:
            reason = _first_line(exc)
            print(f"[InterStable] no prebuilt llama-cpp-python wheel in the {choice} index for this Python ({reason})")
    print(
        "[InterStable] building llama-cpp-python from source: this needs a C++ compiler and CMake and takes 10-20 "
        "minutes; pip's output follows. The WebUI starts when it ends."
    )
    launch.run_pip(
        pip_command("llama-cpp-python", variant="cpu", wheel_only=False),
        "InterStable requirement: llama-cpp-python (source build)",
        live=True,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
            if dist == "llama-cpp-python" and sys.platform != "darwin":
                install_llama(launch)
            else:
                launch.run_pip(pip_command(dist), f"InterStable requirement: {dist}")
        except Exception as exc:  # never break the WebUI launch
            fix = pip_command(dist, wheel_only=False)
            print(
                f"[InterStable] could not install {dist} ({_first_line(exc)}); the WebUI starts without it. Fix: run "
                f"'{sys.executable} -m pip {fix}' in the WebUI's Python, then restart the WebUI."
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
