"""One ``Processed`` from the several ``process_images`` calls of a job, lined up as the host's own single call.

Each call's ``processed.images`` holds a grid first when the host made one (``index_of_first_image``), then one
sample per infotext, then what AlwaysVisible scripts appended in ``postprocess`` (sd-webui-controlnet's detect maps,
HOST_CONTRACT.md 11.3). Forge's scripts put theirs in ``p.extra_result_images`` instead, which reaches
``processed.extra_images``. The job keeps samples and extras apart and returns the samples, the lined images (with
their sample's infotext), then the extras, as the host returns them; a job grid goes first and is saved once, when
the host's settings say grids are saved (HOST_CONTRACT.md 11.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Results:
    """The samples of every call of a job and the images other scripts added."""

    images: list = field(default_factory=list)
    infotexts: list = field(default_factory=list)
    prompts: list = field(default_factory=list)
    negatives: list = field(default_factory=list)
    seeds: list = field(default_factory=list)
    subseeds: list = field(default_factory=list)
    lined: list = field(default_factory=list)
    extras: list = field(default_factory=list)
    forge_extras: list = field(default_factory=list)

    def add(self, processed: Any, lined_images: list) -> None:
        first = processed.index_of_first_image
        images, infotexts = processed.images[first:], processed.infotexts[first:]
        count = min(len(images), len(infotexts))  # one infotext per sample; an empty call has a placeholder one
        self.images += images[:count]
        self.extras += images[count:]
        self.infotexts += infotexts[:count]
        self.prompts += processed.all_prompts[:count]
        self.negatives += processed.all_negative_prompts[:count]
        self.seeds += processed.all_seeds[:count]
        self.subseeds += processed.all_subseeds[:count]
        self.lined += list(zip(lined_images, infotexts[:count], strict=False))
        known = {id(image) for image in self.forge_extras}  # Forge passes the same p.extra_result_images list
        self.forge_extras += [i for i in getattr(processed, "extra_images", None) or [] if id(i) not in known]

    def processed(self, p: Any, *, grid: GridPlan) -> Any:
        """One ``Processed``: the job grid when wanted, the samples, the lined images, then the extras."""
        from modules import processing, shared

        images, infotexts = list(self.images), list(self.infotexts)
        for image, text in self.lined:
            if getattr(shared.opts, "enable_pnginfo", True):
                image.info["parameters"] = text  # as process_images labels its images (the API sends image.info)
            images.append(image)
            infotexts.append(text)
        images += self.extras
        first = 0
        job_grid = grid.make(p, self) if self.images else None
        if job_grid is not None and grid.returned:
            images.insert(0, job_grid)
            infotexts.insert(0, infotexts[0])
            first = 1
        result = processing.Processed(
            p,
            images,
            p.seed,
            infotexts[first] if len(infotexts) > first else "",
            all_prompts=self.prompts or None,
            all_negative_prompts=self.negatives or None,
            all_seeds=self.seeds or None,
            all_subseeds=self.subseeds or None,
            index_of_first_image=first,
            infotexts=infotexts or None,
        )
        if hasattr(result, "extra_images"):  # Forge: the UI and the API return images + extra_images
            result.extra_images = list(self.forge_extras)
        return result


@dataclass(frozen=True)
class GridPlan:
    """The job's one grid, as ``process_images_inner`` decides and saves a call's grid.

    ``wanted``: the caller did not turn grids off (``p.do_not_save_grid``, which the API sets unless
    ``save_images``). ``returned``/``saved``: ``opts.return_grid``/``opts.grid_save``.
    """

    wanted: bool
    returned: bool
    saved: bool
    batch_size: int

    @classmethod
    def of(cls, do_not_save_grid: object, batch_size: int) -> GridPlan:
        from modules import shared

        opts = shared.opts
        return cls(
            wanted=not do_not_save_grid,
            returned=bool(getattr(opts, "return_grid", False)),
            saved=bool(getattr(opts, "grid_save", False)),
            batch_size=batch_size,
        )

    def make(self, p: Any, results: Results) -> Any:
        """The grid (saved when the settings say so), or None when the host would make none."""
        from modules import images as host_images
        from modules import shared

        opts = shared.opts
        few = len(results.images) < 2 and getattr(opts, "grid_only_if_multiple", True)
        if not self.wanted or few or not (self.returned or self.saved):
            return None
        grid = host_images.image_grid(results.images, batch_size=self.batch_size)
        text = results.infotexts[0]
        if getattr(opts, "enable_pnginfo", True):
            grid.info["parameters"] = text
        if self.saved:
            host_images.save_image(
                grid,
                p.outpath_grids,
                "grid",
                results.seeds[0],
                results.prompts[0],
                getattr(opts, "grid_format", "png"),
                info=text,
                short_filename=not getattr(opts, "grid_extended_filename", False),
                p=p,
                grid=True,
            )
        return grid
