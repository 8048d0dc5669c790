"""Fake ``modules.deepbooru`` (HOST_CONTRACT.md 5.2): ``model.tag(pil)``; does not touch ``shared.state``."""

from __future__ import annotations


class DeepDanbooru:
    def __init__(self) -> None:
        self.tags = "1girl, solo, long hair, smile, outdoors"
        self.fail_with: BaseException | None = None
        self.calls: list[str] = []

    def tag(self, pil_image) -> str:
        self.calls.append(pil_image.mode)
        if self.fail_with is not None:
            raise self.fail_with
        return self.tags


model = DeepDanbooru()
