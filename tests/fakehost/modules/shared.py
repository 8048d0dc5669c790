"""Fake ``modules.shared``: opts, cmd_opts, state, interrogator, sd_model."""

from __future__ import annotations

import argparse
import os

from modules import interrogate
from modules.options import OptionInfo, Options
from modules.shared_state import State

__all__ = ["OptionInfo", "cmd_opts", "interrogator", "opts", "sd_model", "state"]

data_path = os.environ.get("FAKEHOST_DATA_PATH", os.getcwd())
models_path = os.path.join(data_path, "models")

cmd_opts = argparse.Namespace(
    api=True,
    api_auth=None,
    nowebui=False,
    lowvram=False,
    medvram=False,
    use_cpu=[],
    data_dir=data_path,
    models_dir=None,
)


def _new_opts() -> Options:
    options = Options()
    # Host options our extension reads (defaults as in A1111 v1.10.1 shared_options.py).
    for _key, _default in {
        "img2img_background_color": "#ffffff",
        "CLIP_stop_at_last_layers": 1,
        "enable_pnginfo": True,
        "return_grid": True,
        "grid_save": True,
        "grid_only_if_multiple": True,
        "grid_format": "png",
        "grid_extended_filename": False,
        "overlay_inpaint": True,
        "samples_save": True,
        "samples_format": "png",
        "interrogate_keep_models_in_memory": False,
        "live_previews_enable": True,
    }.items():
        options.add_option(_key, OptionInfo(_default, _key))
    return options


def reset() -> None:
    """Give every test a fresh host: options, state, interrogators and call records."""
    global opts, state, interrogator, sd_model
    from modules import deepbooru, devices, images, processing, sd_models

    opts = _new_opts()
    state = State()
    interrogator = interrogate.InterrogateModels("interrogate")
    sd_model = SdModel()
    deepbooru.model = deepbooru.DeepDanbooru()
    devices.torch_gc_calls = 0
    processing.calls.clear()
    images.saved.clear()
    sd_models.calls.clear()


class CheckpointInfo:
    """What A1111's ``sd_models.CheckpointInfo`` offers about the loaded file (the parts extensions read)."""

    def __init__(self, filename: str = "model.safetensors", metadata: dict | None = None) -> None:
        self.filename = filename
        self.name = filename
        self.name_for_extra = os.path.splitext(os.path.basename(filename))[0]
        self.title = filename
        self.metadata = dict(metadata or {})  # the safetensors header's __metadata__ ({} for .ckpt or none)


class SdModel:
    """A loaded checkpoint as A1111 v1.10's ``sd_models.load_model`` leaves it: one of ``is_sd1``, ``is_sd2``,
    ``is_sdxl``, ``is_sd3`` true, and ``sd_checkpoint_info``. (No ``cond_stage_model``: tokens are counted without
    the host here.)"""

    def __init__(self, family: str = "sd1", filename: str = "model.safetensors", metadata: dict | None = None) -> None:
        for name in ("sd1", "sd2", "sdxl", "sd3"):
            setattr(self, f"is_{name}", family == name)
        self.sd_checkpoint_info = CheckpointInfo(filename, metadata)


opts = _new_opts()
state = State()
interrogator = interrogate.InterrogateModels("interrogate")
sd_model = SdModel()
total_tqdm = None
