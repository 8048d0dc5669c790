"""Fake ``modules.interrogate.InterrogateModels`` (HOST_CONTRACT.md 5.1).

``interrogate()`` calls ``state.begin()``/``state.end()`` (which reset job counts and the interrupt flags) and returns
text ending in ``<error>`` instead of raising. ``fail_with`` makes it fail; ``on_call`` runs inside the call (for
example to press Interrupt while the caption runs).
"""

from __future__ import annotations


class InterrogateModels:
    def __init__(self, content_dir: str) -> None:
        self.content_dir = content_dir
        self.caption_text = "a photo of a cat sitting on a wooden table"
        self.fail_with: BaseException | None = None
        self.on_call = None
        self.calls: list[str] = []  # image modes received
        self.unloads = 0

    def unload(self) -> None:
        """Moves BLIP and CLIP to the CPU (unless "keep models in VRAM"); the host calls it after interrogate()."""
        self.unloads += 1

    def interrogate(self, pil_image) -> str:
        from modules import shared

        res = ""
        shared.state.begin(job="interrogate")
        try:
            self.calls.append(pil_image.mode)
            if pil_image.mode != "RGB":
                raise ValueError(f"expected RGB, got {pil_image.mode}")
            if self.on_call is not None:
                self.on_call()
            if self.fail_with is not None:
                raise self.fail_with
            res = f"{self.caption_text}, by artist name, pastel colors"
        except Exception:
            res += "<error>"
        shared.state.end()
        return res
