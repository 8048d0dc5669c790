"""Fake ``modules.processing``: the p objects, ``Processed``, ``fix_seed`` and ``process_images``.

``process_images`` follows HOST_CONTRACT.md 3.2-3.5: seeds ``seed + i``, list prompts used as-is, init images
broadcast/shrinking ``batch_size``/``RuntimeError``, ``state.job_count`` set only when -1, interrupt checks between
iterations, ``override_settings`` applied and restored, and ``extra_generation_params`` merged into each infotext.
"Sampling" is a deterministic stand-in: the init image resized to the target size and tinted by the seed.
Every call is recorded in ``calls`` for assertions.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from modules import images as images_module
from modules import infotext_utils, shared

calls: list[dict] = []


def get_fixed_seed(seed):
    if seed == "" or seed is None:
        seed = -1
    elif isinstance(seed, str):
        try:
            seed = int(seed)
        except Exception:
            seed = -1
    if seed == -1:
        return int(random.randrange(4294967294))
    return seed


def fix_seed(p):
    p.seed = get_fixed_seed(p.seed)
    p.subseed = get_fixed_seed(p.subseed)


@dataclass(repr=False)
class StableDiffusionProcessing:
    sd_model: object = None
    outpath_samples: str = None
    outpath_grids: str = None
    prompt: Any = ""
    styles: list = None
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0
    seed_resize_from_h: int = -1
    seed_resize_from_w: int = -1
    seed_enable_extras: bool = True
    sampler_name: str = None
    scheduler: str = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 50
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    restore_faces: bool = None
    tiling: bool = None
    do_not_save_samples: bool = False
    do_not_save_grid: bool = False
    extra_generation_params: dict = None
    overlay_images: list = None
    negative_prompt: Any = ""
    eta: float = None
    do_not_reload_embeddings: bool = False
    denoising_strength: float = None
    override_settings: dict = None
    override_settings_restore_afterwards: bool = True
    disable_extra_networks: bool = False
    comments: dict = None

    all_prompts: list = field(default=None, init=False)
    all_negative_prompts: list = field(default=None, init=False)
    all_seeds: list = field(default=None, init=False)
    all_subseeds: list = field(default=None, init=False)
    iteration: int = field(default=0, init=False)
    is_api: bool = field(default=False, init=False)
    scripts: object = field(default=None, init=False)
    script_args: list = field(default=None, init=False)

    def __post_init__(self):
        if self.styles is None:
            self.styles = []
        self.extra_generation_params = self.extra_generation_params or {}
        self.override_settings = self.override_settings or {}
        self.comments = {}

    def setup_prompts(self):
        n = self.batch_size * self.n_iter
        self.all_prompts = list(self.prompt) if isinstance(self.prompt, list) else n * [self.prompt]
        self.main_prompt = self.all_prompts[0]
        neg = self.negative_prompt
        self.all_negative_prompts = list(neg) if isinstance(neg, list) else n * [neg]


@dataclass(repr=False)
class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    init_images: list = None
    resize_mode: int = 0
    denoising_strength: float = 0.75
    image_cfg_scale: float = None
    mask: Any = None
    mask_blur_x: int = 4
    mask_blur_y: int = 4
    mask_blur: int = None
    mask_round: bool = True
    inpainting_fill: int = 0
    inpaint_full_res: bool = True
    inpaint_full_res_padding: int = 0
    inpainting_mask_invert: int = 0
    initial_noise_multiplier: float = None
    latent_mask: Image = None

    image_mask: Any = field(default=None, init=False)

    def __post_init__(self):
        super().__post_init__()
        self.image_mask = self.mask  # the constructor's mask moves to image_mask (HOST_CONTRACT.md 3.2)
        self.mask = None


class Processed:
    def __init__(
        self,
        p,
        images_list,
        seed=-1,
        info="",
        subseed=None,
        all_prompts=None,
        all_negative_prompts=None,
        all_seeds=None,
        all_subseeds=None,
        index_of_first_image=0,
        infotexts=None,
        comments="",
    ):
        self.images = images_list
        self.prompt = p.prompt
        self.negative_prompt = p.negative_prompt
        self.seed = seed
        self.subseed = subseed
        self.info = info
        self.comments = comments
        self.width = p.width
        self.height = p.height
        self.sampler_name = p.sampler_name
        self.cfg_scale = p.cfg_scale
        self.steps = p.steps
        self.batch_size = p.batch_size
        self.denoising_strength = getattr(p, "denoising_strength", None)
        self.extra_generation_params = p.extra_generation_params
        self.index_of_first_image = index_of_first_image
        self.styles = p.styles
        self.job_timestamp = shared.state.job_timestamp
        self.clip_skip = shared.opts.CLIP_stop_at_last_layers
        self.is_using_inpainting_conditioning = False
        self.all_prompts = all_prompts or p.all_prompts or [self.prompt]
        self.all_negative_prompts = all_negative_prompts or p.all_negative_prompts or [self.negative_prompt]
        self.all_seeds = all_seeds or p.all_seeds or [self.seed]
        self.all_subseeds = all_subseeds or p.all_subseeds or [self.subseed]
        self.infotexts = infotexts or [info] * len(images_list)
        self.version = "v1.10.1"

    def js(self):
        obj = {
            "prompt": self.all_prompts[0],
            "all_prompts": self.all_prompts,
            "negative_prompt": self.all_negative_prompts[0],
            "all_negative_prompts": self.all_negative_prompts,
            "seed": self.seed,
            "all_seeds": self.all_seeds,
            "subseed": self.subseed,
            "all_subseeds": self.all_subseeds,
            "width": self.width,
            "height": self.height,
            "sampler_name": self.sampler_name,
            "cfg_scale": self.cfg_scale,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "denoising_strength": self.denoising_strength,
            "extra_generation_params": self.extra_generation_params,
            "index_of_first_image": self.index_of_first_image,
            "infotexts": self.infotexts,
            "styles": self.styles,
            "job_timestamp": self.job_timestamp,
            "clip_skip": self.clip_skip,
            "version": self.version,
        }
        return json.dumps(obj, default=str)

    def infotext(self, p, index):
        return create_infotext(p, self.all_prompts, self.all_seeds, self.all_subseeds, index=index)


def create_infotext(
    p,
    all_prompts,
    all_seeds,
    all_subseeds,
    comments=None,
    iteration=0,
    position_in_batch=0,
    use_main_prompt=False,
    index=None,
    all_negative_prompts=None,
):
    if index is None:
        index = position_in_batch + iteration * p.batch_size
    if all_negative_prompts is None:
        all_negative_prompts = p.all_negative_prompts
    clip_skip = getattr(p, "clip_skip", shared.opts.CLIP_stop_at_last_layers)
    generation_params = {
        "Steps": p.steps,
        "Sampler": p.sampler_name,
        "Schedule type": p.scheduler,
        "CFG scale": p.cfg_scale,
        "Seed": p.all_seeds[0] if use_main_prompt else all_seeds[index],
        "Size": f"{p.width}x{p.height}",
        "Denoising strength": p.extra_generation_params.get("Denoising strength"),
        "Clip skip": None if clip_skip <= 1 else clip_skip,
    }
    for key, value in p.extra_generation_params.items():
        if callable(value):
            value = value(**dict(locals(), p=p, index=index, iteration=iteration))
        elif isinstance(value, list):
            value = value[index] if index < len(value) else None
        generation_params[key] = value
    generation_params["Version"] = "v1.10.1"
    params_text = ", ".join(
        [k if k == v else f"{k}: {infotext_utils.quote(v)}" for k, v in generation_params.items() if v is not None]
    )
    prompt_text = p.main_prompt if use_main_prompt else all_prompts[index]
    negative_prompt = all_negative_prompts[index] if all_negative_prompts else ""
    negative_prompt_text = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt_text}{negative_prompt_text}\n{params_text}".strip()


def process_images(p) -> Processed:
    stored = {}
    for k, v in p.override_settings.items():
        if k in shared.opts.data:
            stored[k] = shared.opts.data[k]
            shared.opts.set(k, v, is_api=True, run_callbacks=False)
    try:
        return _process_images_inner(p)
    finally:
        if p.override_settings_restore_afterwards:
            for k, v in stored.items():
                shared.opts.set(k, v)


def _process_images_inner(p) -> Processed:
    seed = get_fixed_seed(p.seed)
    subseed = get_fixed_seed(p.subseed)
    # init(): one image is broadcast; fewer than batch_size shrink it; more raise (HOST_CONTRACT.md 3.2).
    init_images = p.init_images
    if init_images is None or len(init_images) == 0 or any(img is None for img in init_images):
        raise AttributeError("'NoneType' object has no attribute 'mode'")
    if len(init_images) > p.batch_size:
        raise RuntimeError(f"bad number of images passed: {len(init_images)}; expecting {p.batch_size} or less")
    if 1 < len(init_images) <= p.batch_size:
        p.batch_size = len(init_images)
    if p.scripts is not None:
        p.scripts.process(p)
    p.setup_prompts()
    n = p.batch_size * p.n_iter
    p.all_seeds = [int(seed) + (x if p.subseed_strength == 0 else 0) for x in range(n)]
    p.all_subseeds = [int(subseed) + x for x in range(n)]
    calls.append(
        {
            "prompt": p.prompt,
            "all_prompts": list(p.all_prompts),
            "seeds": list(p.all_seeds),
            "steps": p.steps,
            "sampler_name": p.sampler_name,
            "scheduler": p.scheduler,
            "batch_size": p.batch_size,
            "n_iter": p.n_iter,
            "init_images": list(init_images),
            "image_mask": p.image_mask,
            "latent_mask": None,
            "inpainting_fill": getattr(p, "inpainting_fill", None),
            "mask_blur": (getattr(p, "mask_blur_x", 0), getattr(p, "mask_blur_y", 0)),
            "clip_skip": shared.opts.CLIP_stop_at_last_layers,
            "denoising_strength": p.denoising_strength,
            "cfg_scale": p.cfg_scale,
        }
    )
    if shared.state.job_count == -1:
        shared.state.job_count = p.n_iter
    output_images, infotexts = [], []
    for it in range(p.n_iter):
        p.iteration = it
        if shared.state.skipped:
            shared.state.skipped = False
        if shared.state.interrupted or shared.state.stopping_generation:
            break
        region = _mask(p)  # init() comes before the batches
        if region is not None:
            calls[-1]["latent_mask"] = region[1]
        if p.scripts is not None:
            p.scripts.process_batch(p, batch_number=it)
        for b in range(p.batch_size):
            index = it * p.batch_size + b
            src = init_images[b] if len(init_images) > 1 else init_images[0]
            init = images_module.flatten(src, shared.opts.img2img_background_color).resize((p.width, p.height))
            tint = Image.new("RGB", init.size, ((p.all_seeds[index] * 37) % 256, 64, 128))
            img = Image.blend(_masked_content(p, init, region), tint, 0.1)
            if region is not None:  # only the latent cells of the mask are re-rendered; the overlay keeps the rest
                img = Image.composite(img, init, region[0])
            text = create_infotext(p, p.all_prompts, p.all_seeds, p.all_subseeds, index=index)
            if shared.opts.enable_pnginfo:
                img.info["parameters"] = text
            output_images.append(img)
            infotexts.append(text)
        shared.state.nextjob()
    index_of_first_image = 0
    # A grid at index 0 when it is returned, there is more than one image and the grid is not suppressed (the UI
    # leaves do_not_save_grid False; the API sets it unless save_images is given).
    opts = shared.opts
    # Each call makes its grid when it is returned or saved (HOST_CONTRACT.md 11.4), unless suppressed (the UI leaves
    # do_not_save_grid False; the API sets it unless save_images is given) or there is one image only.
    few = len(output_images) < 2 and opts.grid_only_if_multiple
    if (opts.return_grid or opts.grid_save) and not p.do_not_save_grid and not few:
        grid = images_module.image_grid(output_images, p.batch_size)
        text = create_infotext(p, p.all_prompts, p.all_seeds, p.all_subseeds, use_main_prompt=True)
        if opts.return_grid:
            output_images.insert(0, grid)
            infotexts.insert(0, text)
            index_of_first_image = 1
        if opts.grid_save:
            images_module.save_image(grid, p.outpath_grids, "grid", p.all_seeds[0], p.all_prompts[0], grid=True, p=p)
    processed = Processed(
        p,
        output_images,
        p.all_seeds[0],
        infotexts[0] if infotexts else "",
        subseed=p.all_subseeds[0],
        index_of_first_image=index_of_first_image,
        infotexts=infotexts,
    )
    if hasattr(p, "extra_result_images"):  # Forge: Processed(..., extra_images_list=p.extra_result_images)
        processed.extra_images = p.extra_result_images
    if p.scripts is not None:
        p.scripts.postprocess(p, processed)  # AlwaysVisible scripts may append images (HOST_CONTRACT.md 11.3)
    return processed


def _mask(p):
    """The overlay mask and the latent mask (0/1 per 8x8 cell) of ``init()`` (HOST_CONTRACT.md 11.1), or None.

    Binary at 128 (alpha for an RGBA mask with transparency), inverted for "inpaint not masked", blurred by
    ``mask_blur`` (a Gaussian, as cv2 does), resized to the target size, then a bicubic resize to the latent grid,
    rounded when ``mask_round``. Only the whole-picture path: "only masked" crops in the host (not modelled here).
    """
    from PIL import ImageFilter, ImageOps

    mask = getattr(p, "image_mask", None)
    if mask is None:
        return None
    if mask.mode == "RGBA" and mask.getextrema()[-1] != (255, 255):
        mask = mask.split()[-1].convert("L")
    mask = mask.convert("L").point(lambda x: 255 if x > 128 else 0)
    if p.inpainting_mask_invert:
        mask = ImageOps.invert(mask)
    blur = max(p.mask_blur_x, p.mask_blur_y)
    if blur > 0:
        mask = mask.filter(ImageFilter.GaussianBlur(blur))
    mask = mask.resize((p.width, p.height))
    latent = np.asarray(mask.resize((p.width // 8, p.height // 8), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    if p.mask_round:
        latent = np.around(latent)
    cells = Image.fromarray((latent * 255).astype(np.uint8), mode="L")
    return cells.resize(mask.size, Image.Resampling.NEAREST), latent


def _masked_content(p, init, region):
    """What the sampler starts from under the mask: the init pixels only for "original" (``inpainting_fill`` 1);
    "fill" smears the surroundings over them, "latent noise"/"latent nothing" replace them (HOST_CONTRACT.md 11.2)."""
    if region is None or p.inpainting_fill == 1:
        return init
    fill = Image.new("RGB", init.size, (127, 127, 127))
    return Image.composite(fill, init, region[0])
