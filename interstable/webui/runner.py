"""``run()`` of the script: one job of img2img with per-image lines, captions and LLM prompts.

The host's ``process_images`` runs once per batch (once per image when the strokes become the inpaint mask), with the
lined images as init images and a list prompt, and the results are merged into one ``Processed`` whose images,
infotexts, seeds and prompts line up (HOST_CONTRACT.md 10.5).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interstable import TITLE
from interstable.args import ARGS_BY_KEY, JobConfig, infotext_text, to_infotext
from interstable.errors import ConfigError, InputImageError, JobInterrupted
from interstable.job import ImageInput, ImageOutcome, run_pipeline
from interstable.seeds import derive_seed
from interstable.webui import masks
from interstable.webui import resources as job_resources
from interstable.webui import settings as settings_module
from interstable.webui.results import GridPlan, Results

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger("interstable")


@dataclass(frozen=True)
class _Layout:
    """How the job's images are grouped into ``process_images`` calls."""

    batch_size: int
    n_iter: int
    seeds: list[int]
    subseeds: list[int]
    groups: list[list[int]]
    pipeline_seeds: list[int]


def _layout(p: Any, config: JobConfig) -> _Layout:
    from modules import processing

    processing.fix_seed(p)
    init_count = len(p.init_images)
    batch_size = int(p.batch_size)
    if init_count > batch_size:
        raise InputImageError(
            f"{init_count} init images were given for a batch size of {batch_size}; "
            "send one image, or at most batch size images"
        )
    if 1 < init_count < batch_size:
        batch_size = init_count  # the host shrinks the batch the same way
    n_iter = int(p.n_iter)
    total = batch_size * n_iter
    variation = float(getattr(p, "subseed_strength", 0) or 0) != 0
    seeds = [int(p.seed) + (0 if variation else i) for i in range(total)]
    subseeds = [int(p.subseed) + i for i in range(total)]
    # With variation seeds every image has the same seed and its own subseed: the lines and the prompt follow both,
    # so each image still gets fresh ones (and the infotext's line and LLM seeds reproduce them).
    pipeline_seeds = seeds
    if variation:
        pipeline_seeds = [derive_seed(s, f"variation {v}") for s, v in zip(seeds, subseeds, strict=True)]
    if config.lines_as_mask:
        groups = [[i] for i in range(total)]  # every image has its own stroke mask
    else:
        groups = [list(range(start, start + batch_size)) for start in range(0, total, batch_size)]
    return _Layout(batch_size, n_iter, seeds, subseeds, groups, pipeline_seeds)


def inpaint_region(mask: Image.Image, *, invert: bool = False, size: tuple[int, int] | None = None) -> Image.Image:
    """Where lines may go, from an inpaint mask, read as the host's ``create_binary_mask`` reads it.

    An RGBA mask that uses its alpha channel counts by alpha (API clients send black strokes on a transparent
    background), any other mask by its grey level. ``invert`` is the host's "inpaint not masked"; ``size`` resizes
    the region as the host resizes mask and image alike (None keeps it).
    """
    from PIL import Image, ImageOps

    if mask.mode == "P" and "transparency" in mask.info:
        mask = mask.convert("RGBA")
    if mask.mode == "RGBA" and mask.getextrema()[-1] != (255, 255):
        region = mask.getchannel("A")
    else:
        region = mask if mask.mode in ("L", "1") else mask.convert("L")
    if invert:
        region = ImageOps.invert(region.convert("L"))
    if size is not None and region.size != size:
        region = region.resize(size, Image.Resampling.NEAREST)
    return region


def _region(p: Any, config: JobConfig, size: tuple[int, int]) -> Image.Image | None:
    mask = getattr(p, "image_mask", None)
    if mask is None or config.line_region != "auto":
        return None
    return inpaint_region(mask, invert=bool(getattr(p, "inpainting_mask_invert", 0)), size=size)


def _inputs(p: Any, config: JobConfig, layout: _Layout) -> list[ImageInput]:
    images = p.init_images
    regions: dict[tuple[int, int], Image.Image | None] = {}  # one region per image size, not per image
    inputs = []
    for i, seed in enumerate(layout.pipeline_seeds):
        image = images[i % layout.batch_size] if len(images) > 1 else images[0]
        if image.size not in regions:
            regions[image.size] = _region(p, config, image.size)
        inputs.append(ImageInput(image=image, seed=seed, region=regions[image.size]))
    return inputs


def _per_image(prompt: object, total: int) -> list[str]:
    """A prompt (or negative prompt) per image: API callers may send a list (the host's setup_prompts uses it as is)."""
    if isinstance(prompt, list):
        return [str(prompt[i % len(prompt)]) if prompt else "" for i in range(total)]
    return [str(prompt or "")] * total


def _per_image_params(outcomes: list[ImageOutcome], users: list[str], info: job_resources.ModelInfo) -> dict:
    def column(values: list[object]) -> list[object] | None:
        return values if any(v not in (None, "") for v in values) else None

    params: dict[str, object] = {
        "InterStable caption": column([infotext_text(o.caption) if o.caption else None for o in outcomes]),
        "InterStable user prompt": column([infotext_text(u) if u else None for u in users]),
        "InterStable user language": column([o.user_language or None for o in outcomes]),
        "InterStable lines": [o.lined.count for o in outcomes],
        "InterStable line seed": [o.line_seed for o in outcomes],
        "InterStable failure": column([infotext_text("; ".join(o.failures)) if o.failures else None for o in outcomes]),
    }
    if info.prompt_style:  # the style used: what Auto stood for, so a paste writes the same way on any checkpoint
        params["InterStable prompt style"] = ARGS_BY_KEY["prompt_style"].choice_label(info.prompt_style)
    if info.vision_name:  # the pair that looked, by its full name: a paste finds the same one
        params["InterStable vision model"] = info.vision_name
    if info.llm_name:
        params["InterStable LLM model"] = info.llm_name
        if info.llm_hash:  # a server's model has no file here to hash
            params["InterStable LLM hash"] = info.llm_hash
        if info.llm_backend == "server":  # the model name is the server's; the URL and key are never written
            params["InterStable LLM backend"] = "OpenAI-compatible server"
        params["InterStable LLM seed"] = [o.llm_seed for o in outcomes]
    return {k: v for k, v in params.items() if v is not None}


def run_job(p: Any, config: JobConfig) -> Any:
    """Run one job and return the merged ``Processed``."""
    from modules import shared

    if config.lines_as_mask and config.line_density == 0:
        raise ConfigError(
            "Re-render only the strokes",
            True,
            "it needs lines to re-render: raise Line density above 0, or turn it off (with no strokes the WebUI would "
            "re-render the whole image)",
        )
    settings = settings_module.read()
    layout = _layout(p, config)
    inputs = _inputs(p, config, layout)
    _count_jobs(shared.state, len(layout.groups) + 2)  # captions, prompts, then each sampling call
    override = (getattr(p, "override_settings", None) or {}).get("sd_model_checkpoint")  # loaded in process_images
    models = job_resources.prepare(config, settings, checkpoint=override)
    job = _Run(p, config, settings, layout, models, _per_image(p.prompt, len(inputs)))
    try:
        outcomes = job.prepare(inputs)
    except JobInterrupted:
        logger.info("InterStable: interrupted before sampling; no images were made")
        job.models.finish()
        return job.empty()
    except BaseException:
        job.models.finish()  # a failure before sampling frees what the job started, as sampling's end does
        raise
    return job.sample(outcomes)


_BATCH_JOB = re.compile(r"(\d+) out of (\d+)")
"""``state.job`` while img2img's Batch tab runs the script once per file (``modules/img2img.py: process_batch``)."""


def _batch_files(state: Any) -> tuple[int, bool]:
    """How many files the job stands for and whether this run is the first of them.

    Under img2img's Batch tab the host sets ``job_count`` to files x n_iter and runs this script once per file
    (``state.job`` is "i out of n"); otherwise the job is one file.
    """
    batch = _BATCH_JOB.fullmatch(str(getattr(state, "job", "") or ""))
    return (1, True) if batch is None else (int(batch.group(2)), batch.group(1) == "1")


def _count_jobs(state: Any, units: int) -> None:
    """Set the host's job count: one unit per counted stage and per ``process_images`` call, so that the progress
    (``job_no/job_count`` plus the current unit's steps) only grows from the first stage to the last image; under
    the Batch tab the first file sets it for all files and the later ones leave it."""
    files, first = _batch_files(state)
    if first:
        state.job_count = files * units


def _console_total(p: Any, calls: int) -> None:
    """The console's "Total progress" bar counts sampling steps of ``job_count`` jobs; ours has two that are not
    sampling, so tell it the real total: each call runs ``t_enc + 1`` steps (``sd_samplers_common.setup_img2img_steps``
    and ``launch_sampling``)."""
    from modules import shared

    bar = getattr(shared, "total_tqdm", None)
    files, first = _batch_files(shared.state)
    if not first or bar is None or not callable(getattr(bar, "updateTotal", None)):
        return
    steps, strength = int(p.steps), min(float(p.denoising_strength or 0), 0.999)
    t_enc = steps - 1 if getattr(shared.opts, "img2img_fix_steps", False) else int(strength * steps)
    bar.updateTotal(files * calls * (t_enc + 1))


_RESTORED = (
    "prompt",
    "negative_prompt",
    "seed",
    "subseed",
    "batch_size",
    "n_iter",
    "init_images",
    "image_mask",
    "do_not_save_grid",
    *masks.FIELDS,
)
"""What the sampling loop changes on ``p`` and puts back afterwards (Processed and later scripts read ``p``)."""


@dataclass
class _Run:
    p: Any
    config: JobConfig
    settings: settings_module.Settings
    layout: _Layout
    models: job_resources.JobModels
    users: list[str]

    def prepare(self, inputs: list[ImageInput]) -> list[ImageOutcome]:
        policy = "continue" if self.settings.failure_policy == settings_module.FAILURE_POLICIES[1] else "error"
        return run_pipeline(
            inputs,
            self.config,
            user_prompt=self.users,  # one per image: API callers may send a list prompt
            resources=self.models.resources,
            hooks=self.models.hooks,
            policy=policy,  # type: ignore[arg-type]
            group_size=self.layout.batch_size,
        )

    def sample(self, outcomes: list[ImageOutcome]) -> Any:
        from modules import processing, shared

        p, config = self.p, self.config
        original = {k: getattr(p, k, None) for k in _RESTORED}
        negatives = _per_image(p.negative_prompt, len(outcomes))
        base_params = {**p.extra_generation_params, **to_infotext(config)}
        if self.settings.emit_script_key:
            base_params["Script"] = TITLE
        if config.steps:
            p.steps = config.steps
        out = Results()
        calls = len(self.layout.groups)
        _console_total(p, calls)
        try:
            for number, group in enumerate(self.layout.groups, start=1):
                if shared.state.skipped:
                    shared.state.skipped = False
                if shared.state.interrupted or getattr(shared.state, "stopping_generation", False):
                    break
                chosen = [outcomes[i] for i in group]
                p.init_images = [o.lined.image for o in chosen]
                p.prompt = [o.prompt for o in chosen]
                p.negative_prompt = [negatives[i] for i in group]
                p.batch_size, p.n_iter = len(group), 1
                p.seed, p.subseed = self.layout.seeds[group[0]], self.layout.subseeds[group[0]]
                p.do_not_save_grid = True  # one grid for the whole job, made and saved below
                for key in masks.FIELDS:
                    setattr(p, key, original[key])  # the host's init() may change them for a call
                if config.lines_as_mask:
                    p.image_mask = masks.latent_cell_mask(chosen[0].lined.mask, (int(p.width), int(p.height)))
                if p.image_mask is not None and config.line_density > 0:
                    for key, value in masks.inpaint_fields(strokes=config.lines_as_mask).items():
                        setattr(p, key, value)
                users = [self.users[i] for i in group]
                p.extra_generation_params = {**base_params, **_per_image_params(chosen, users, self.models.info)}
                shared.state.textinfo = f"InterStable: sampling {number}/{calls}"
                out.add(processing.process_images(p), [o.lined.image for o in chosen] if config.show_lined else [])
        finally:
            for key, value in original.items():
                setattr(p, key, value)
            p.extra_generation_params = base_params
            self.models.finish()
        return out.processed(p, grid=GridPlan.of(original["do_not_save_grid"], self.layout.batch_size))

    def empty(self) -> Any:
        """An empty ``Processed`` (the job ended before sampling)."""
        from modules import processing

        return processing.Processed(self.p, [], self.p.seed, "")
