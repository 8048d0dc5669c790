"""The meters and stand-ins of the ``vram`` benchmark: device memory polling, torch peaks per stage, and small
stand-ins for the SD checkpoint, the host functions a memory policy calls, a captioner and the pipeline's hooks.
"""

from __future__ import annotations

import contextlib
import gc
import subprocess
import sys
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from interstable.job import Hooks

__all__ = ["MIB", "DeviceUsed", "Meter", "MeterHooks", "StandInCaptioner", "StandInSD", "stand_in_host", "tensors"]

MIB = 1024**2


# --- meters -------------------------------------------------------------------------------------------------------


class DeviceUsed:
    """The device's used memory in bytes from NVML (pynvml) or ``nvidia-smi``, polled in a thread for peaks."""

    def __init__(self, torch: Any) -> None:
        self.source = "none"
        self._read: Callable[[], int] | None = None
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        bus_id = str(getattr(props, "pci_bus_id", "") or "")
        index = torch.cuda.current_device()
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = (
                pynvml.nvmlDeviceGetHandleByPciBusId(bus_id) if bus_id else pynvml.nvmlDeviceGetHandleByIndex(index)
            )
            self._read = lambda: int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
            self.source, self.interval = "pynvml", 0.002
        except Exception:  # no pynvml, or NVML refuses: try the command line tool
            command = [
                "nvidia-smi",
                "--query-gpu=memory.used",
                "--format=csv,noheader,nounits",
                f"-i={bus_id or index}",
            ]

            def smi() -> int:
                out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=10).stdout
                return int(float(out.strip().splitlines()[0]) * MIB)

            try:
                smi()
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                pass
            else:
                self._read, self.source, self.interval = smi, "nvidia-smi (coarse: polled every 0.1 s)", 0.1
        self.peak = self.now()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def now(self) -> int:
        return self._read() if self._read is not None else 0

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.now())

    def start(self) -> None:
        if self._read is not None and self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="interstable-vram-poll", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def reset(self) -> None:
        self.peak = self.now()

    def read_peak(self) -> int:
        self.peak = max(self.peak, self.now())
        return self.peak


@dataclass
class Meter:
    """Peaks of torch's allocations and of the device's used memory, per span (a span ends at the next ``mark``)."""

    torch: Any
    cuda: bool
    device: DeviceUsed | None = None
    idle: int = 0
    spans: dict[str, dict[str, int]] = field(default_factory=dict)
    current: str | None = None

    def __post_init__(self) -> None:
        if self.cuda:
            self.torch.cuda.init()
            self.device = DeviceUsed(self.torch)
            self.idle = self.device.now()
            self.device.start()

    def mark(self, name: str | None) -> None:
        """End the current span (recording its peaks) and start ``name`` (None: none)."""
        if self.current is not None:
            self.spans[self.current] = self.peaks()
        self.current = name
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
            assert self.device is not None
            self.device.reset()

    def peaks(self) -> dict[str, int]:
        if not self.cuda:
            return {"torch": 0, "reserved": 0, "device": 0}
        assert self.device is not None
        self.torch.cuda.synchronize()
        return {
            "torch": int(self.torch.cuda.max_memory_allocated()),
            "reserved": int(self.torch.cuda.max_memory_reserved()),
            "device": max(0, self.device.read_peak() - self.idle),
        }

    def allocated(self) -> int:
        return int(self.torch.cuda.memory_allocated()) if self.cuda else 0

    def close(self) -> None:
        if self.device is not None:
            self.device.stop()


# --- stand-ins for SD, the host and the captioner -----------------------------------------------------------------

_CHUNK = 256 * MIB


def tensors(torch: Any, gb: float, device: str) -> list[Any]:
    """float16 tensors of ``gb`` GB in chunks of 256 MiB (like a checkpoint's many weights)."""
    total, chunks = int(gb * 1024**3), []
    while total > 0:
        size = min(total, _CHUNK)
        chunks.append(torch.full((size // 2,), 0.001, dtype=torch.float16, device=device))
        total -= size
    return chunks


class StandInSD:
    """The SD checkpoint: weights that move between the GPU and the CPU, and a sampling loop."""

    def __init__(self, torch: Any, gb: float, device: str) -> None:
        self.torch, self.device = torch, device
        self.weights = tensors(torch, gb, device)

    def to(self, device: str) -> StandInSD:
        self.weights = [w.to(device) for w in self.weights]
        return self

    def bytes_on(self, device: str) -> int:
        return sum(w.numel() * 2 for w in self.weights if w.device.type == device)

    def sample(self, *, steps: int, activations_gb: float) -> None:
        torch = self.torch
        with torch.no_grad():
            activations = tensors(torch, activations_gb, self.device)
            for _ in range(steps):
                for i, weight in enumerate(self.weights):
                    activations[i % len(activations)][:1024].add_(weight[:1024])
            if self.device.startswith("cuda"):
                torch.cuda.synchronize()
            del activations


@contextlib.contextmanager
def stand_in_host(sd: StandInSD, torch: Any) -> Iterator[None]:
    """Put minimal ``modules.devices/sd_models/shared`` into ``sys.modules`` for GpuTimeShare; restore them after."""

    def torch_gc() -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    fakes = {
        "modules": types.ModuleType("modules"),
        "modules.devices": types.SimpleNamespace(torch_gc=torch_gc),
        "modules.sd_models": types.SimpleNamespace(
            unload_model_weights=lambda model: model.to("cpu"),
            send_model_to_device=lambda model: model.to(sd.device),
        ),
        "modules.shared": types.SimpleNamespace(sd_model=sd),
    }
    for name in ("devices", "sd_models", "shared"):
        setattr(fakes["modules"], name, fakes[f"modules.{name}"])
    saved = {name: sys.modules.get(name) for name in fakes}
    sys.modules.update(fakes)  # type: ignore[arg-type]
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class StandInCaptioner:
    """A captioner holding ``gb`` GB on the device while captioning; :meth:`release` moves it to the CPU."""

    name = "standin"
    cache_token = ""

    def __init__(self, torch: Any, gb: float, device: str) -> None:
        self.torch, self.gb, self.device = torch, gb, device
        self.weights: list[Any] = []

    def caption(self, image: Any) -> str:
        if not self.weights or self.weights[0].device.type == "cpu":
            self.weights = tensors(self.torch, self.gb, self.device)
        with self.torch.no_grad():
            for weight in self.weights:
                weight[:1024].mul_(1.0)
        return "a stand-in caption of a picture"

    def release(self) -> None:
        self.weights = [w.to("cpu") for w in self.weights]
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()


@dataclass
class MeterHooks(Hooks):
    """Marks the stages on the meter and makes room for the LLM through the policy, as HostHooks does."""

    meter: Meter
    memory: Any  # GpuTimeShare
    sd: StandInSD
    captioner_at_llm: int = 0
    sd_moved: bool = False

    def stage(self, text: str) -> None:
        kind = "lines" if "lines" in text else "caption" if "caption" in text else "llm"
        if kind != self.meter.current:
            self.meter.mark(kind)

    def before_llm(self) -> None:
        self.meter.mark("llm")
        self.memory.before_llm()
        self.sd_moved = bool(self.memory.moved)
        # What torch still holds besides SD when the LLM starts: a resident captioner would show here.
        self.captioner_at_llm = self.meter.allocated() - self.sd.bytes_on("cuda")

    def after_llm(self) -> None:
        self.meter.mark(None)
        self.memory.after_llm()
