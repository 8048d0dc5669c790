"""Who holds the GPU while the LLM runs: the memory choreography of DESIGN.md on A1111, Forge and reForge.

Per job, not per image: captions first (the captioner is released after them), then SD's weights leave the GPU only
if the LLM needs the room, every prompt is written, the LLM is closed or kept, and SD comes back before sampling.

Policies (Settings -> InterStable -> GPU memory policy):

- ``Auto``: the LLM goes on the GPU when the free VRAM holds it (GPU layers ``auto``); SD moves off the GPU only when
  the LLM was asked to use the GPU and the free VRAM does not hold it.
- ``Keep SD on the GPU, LLM on the CPU``: SD never moves; the LLM runs with ``n_gpu_layers=0``.
- ``Time-share the GPU``: SD's weights leave the GPU while the LLM runs, every time it runs on the GPU (never for a
  CPU-only llama-cpp-python build).

Under ``--use-cpu all`` (A1111) or ``--always-cpu`` (Forge) the user asked for the CPU: the LLM loads with 0 GPU
layers, whatever the settings say, and nothing moves.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from dataclasses import dataclass, field

logger = logging.getLogger("interstable")

AUTO, LLM_ON_CPU, TIME_SHARE = "Auto", "Keep SD on the GPU, LLM on the CPU", "Time-share the GPU"


def host_kind() -> str:
    """``"forge"`` (its ``backend.memory_management``), ``"reforge"`` (``ldm_patched``) or ``"a1111"``."""
    if importlib.util.find_spec("backend") and importlib.util.find_spec("backend.memory_management"):
        return "forge"
    if importlib.util.find_spec("ldm_patched"):
        return "reforge"
    return "a1111"


def host_on_cpu() -> bool:
    """Whether the WebUI was told to run everything on the CPU (``--use-cpu all``, Forge's ``--always-cpu``).

    Read from the host's already imported ``modules.shared``, never imported here: outside a WebUI (the benchmarks,
    the CLI) there is no host to ask, and importing whatever ``modules`` is on the path would leave it behind.
    """
    shared = sys.modules.get("modules.shared")
    if shared is None:
        return False
    cmd_opts = getattr(shared, "cmd_opts", None)
    use_cpu = getattr(cmd_opts, "use_cpu", None) or []
    return bool(getattr(cmd_opts, "always_cpu", False)) or "all" in [str(v).lower() for v in use_cpu]


def free_vram() -> int:
    """Free bytes on the current CUDA device, 0 without CUDA (or without torch)."""
    try:
        import torch
    except ImportError:
        return 0
    if not torch.cuda.is_available():
        return 0
    free, _total = torch.cuda.mem_get_info()
    return int(free)


@dataclass
class GpuTimeShare:
    """Moves SD's weights off the GPU for the LLM and back afterwards, as the policy asks.

    Attributes:
        policy: One of the three policy labels.
        llm_bytes: The LLM's size on the GPU (its file size is a fair estimate), for the ``Auto`` decision.
        moved: True while SD's weights are off the GPU because of us.
    """

    policy: str = AUTO
    llm_bytes: int = 0
    llm_wants_gpu: bool = False
    moved: bool = field(default=False, init=False)

    def llm_gpu_layers(self, requested: str) -> str:
        """The GPU-layers setting the LLM should load with under this policy."""
        return "0" if self.policy == LLM_ON_CPU or host_on_cpu() else requested

    def needs_room(self) -> bool:
        """True when SD's weights must leave the GPU before the LLM loads."""
        if self.policy == LLM_ON_CPU or not self.llm_wants_gpu:
            return False  # an LLM on the CPU (a CPU-only build, --use-cpu all) needs no VRAM, time-shared or not
        if self.policy == TIME_SHARE:
            return True
        return free_vram() < self.llm_bytes + 512 * 1024**2

    def before_llm(self) -> None:
        """Free the GPU for the LLM if the policy asks for it."""
        if self.moved or not self.needs_room():
            return
        from modules import devices, sd_models, shared

        kind = host_kind()
        if kind == "forge":
            from backend import memory_management

            memory_management.unload_all_models()
            memory_management.soft_empty_cache()
        else:
            sd_models.unload_model_weights(shared.sd_model)
        devices.torch_gc()
        self.moved = True
        logger.info("InterStable: moved the SD weights off the GPU for the LLM (%s)", kind)

    def after_llm(self) -> None:
        """Bring SD's weights back (Forge and reForge reload by themselves before sampling)."""
        if not self.moved:
            return
        from modules import devices, sd_models, shared

        devices.torch_gc()
        if host_kind() == "a1111":
            sd_models.send_model_to_device(shared.sd_model)
        self.moved = False
