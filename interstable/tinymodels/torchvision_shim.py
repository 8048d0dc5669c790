"""A guarded workaround for torchvision builds whose compiled ops do not load (tests, benchmarks, ``--tiny``).

Only the tiny-model tooling calls it; the WebUI script never does (WebUI installs have a torchvision that matches
their torch).
"""

from __future__ import annotations

import sys
from typing import Any

_TORCHVISION_SHIM: list[Any] = []


def ensure_torchvision() -> None:
    """Make ``import torchvision`` work on a CPU torch with torchvision's CUDA build (pytorch/vision#9085).

    torchvision registers fake kernels for ``nms``/``qnms`` without checking that its compiled ops loaded; defining
    the two op schemas first lets ``torchvision.transforms`` (all open_clip needs) import. Does nothing where
    torchvision imports normally (as in WebUI installs, whose torchvision matches their torch).
    """
    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::nms does not exist" not in str(exc):
            raise
    else:
        return
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    library = torch.library.Library("torchvision", "DEF")
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_SHIM.append(library)  # the schemas live as long as the Library object
    import torchvision  # noqa: F401
