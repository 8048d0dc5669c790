"""Finding and loading the models of the clip-interrogator backend (:mod:`interstable.caption.clip_backend`).

Caption models come from a folder with a ``config.json`` or a Hugging Face repo named by clip-interrogator; CLIP
weights from open_clip's pretrained tags or plain files. Downloads happen only when allowed; otherwise a missing model
is a :class:`~interstable.errors.ModelNotFoundError` that says how to get it. Label embeddings are kept in a folder
named after a fingerprint of the CLIP weights. ``clip_interrogator``, ``transformers``, ``open_clip`` and ``torch``
are imported inside the functions only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interstable.caption.checks import is_out_of_memory
from interstable.errors import CaptionError, InterStableError, ModelLoadError, ModelNotFoundError

__all__ = [
    "import_clip_interrogator",
    "label_cache_dir",
    "load_caption_model",
    "load_clip_model",
    "load_error",
    "model_fingerprint",
    "resolve_caption_model",
    "resolve_clip_model",
]


def import_clip_interrogator() -> Any:
    """Return the ``clip_interrogator`` module; raise :class:`CaptionError` saying how to install or repair it."""
    try:
        import clip_interrogator
    except ImportError as exc:
        raise CaptionError(
            f"clip-interrogator is not installed ({exc}); install it into the WebUI's Python with "
            "pip install clip-interrogator==0.6.0 (InterStable's install.py does this), or choose another backend"
        ) from exc
    except Exception as exc:
        raise CaptionError(
            f"clip-interrogator is installed but cannot be imported ({type(exc).__name__}: {exc}); usually torch "
            "and torchvision do not match: install the torchvision built for your torch, or choose another backend"
        ) from exc
    return clip_interrogator


def load_error(exc: BaseException, *, what: str, where: Path, allow_download: bool) -> InterStableError:
    """Return the :class:`ModelError` for a failed load of ``what`` from ``where`` (missing, out of memory, broken)."""
    first = (str(exc) or type(exc).__name__).splitlines()[0]
    if is_out_of_memory(exc):
        return ModelLoadError(
            f"{what}: out of memory while loading ({first}); free VRAM first, use low-VRAM mode, a smaller "
            "caption model (blip-base) or the CPU"
        )
    if isinstance(exc, OSError) and not allow_download:
        return ModelNotFoundError(
            f"{what} is not in {where} and downloads are off ({first}). Allow downloads once (the InterStable "
            "setting, or the CLI's --download) or copy the model there"
        )
    if isinstance(exc, OSError):
        return ModelNotFoundError(f"{what} could not be found or downloaded into {where}: {first}")
    return ModelLoadError(f"{what} could not be loaded: {type(exc).__name__}: {first}")


def _local_model_folder(name: str, models_dir: Path) -> Path | None:
    candidates = [models_dir / name]
    if any(sep in name for sep in "/\\") or name.startswith(("~", ".")):
        candidates.insert(0, Path(name).expanduser())
    for folder in candidates:
        if (folder / "config.json").is_file():
            return folder
    return None


def resolve_caption_model(name: str, *, models_dir: Path) -> tuple[str, str]:
    """Return where a caption model comes from (a folder or a Hugging Face repo) and its model type."""
    import json

    from clip_interrogator.clip_interrogator import CAPTION_MODELS as REPOS

    folder = _local_model_folder(name, models_dir)
    if folder is not None:
        return str(folder), json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type", "blip")
    if name in REPOS:
        return REPOS[name], "git" if name.startswith("git-") else "blip-2" if name.startswith("blip2-") else "blip"
    raise ModelNotFoundError(
        f"caption model {name!r} is neither one of {', '.join(REPOS)} nor a folder with a config.json "
        f"(looked in {models_dir})"
    )


def load_caption_model(
    name: str, origin: tuple[str, str], *, models_dir: Path, dtype: Any, allow_download: bool
) -> tuple[Any, Any, str]:
    """Load a caption model and its processor from :func:`resolve_caption_model`'s origin; return them and its name."""
    import transformers

    source, kind = origin
    classes = {"git": transformers.AutoModelForCausalLM, "blip-2": transformers.Blip2ForConditionalGeneration}
    model_class = classes.get(kind, transformers.BlipForConditionalGeneration)
    # transformers 4.56 renamed torch_dtype to dtype; the WebUI pins 4.30.
    version = tuple(int(part) for part in re.findall(r"\d+", transformers.__version__)[:2])
    dtype_key = "dtype" if version >= (4, 56) else "torch_dtype"
    options = {"cache_dir": str(models_dir / "huggingface"), "local_files_only": not allow_download}
    try:
        model = model_class.from_pretrained(source, **options, **{dtype_key: dtype if kind != "git" else None})
        processor = transformers.AutoProcessor.from_pretrained(source, **options)
    except Exception as exc:
        raise load_error(exc, what=f"caption model {name!r}", where=models_dir, allow_download=allow_download) from exc
    model.eval()
    # clip-interrogator picks the git input handling by the name's "git-" prefix.
    return model, processor, name if kind != "git" or name.startswith("git-") else f"git-{name}"


def resolve_clip_model(clip_name: str, *, models_dir: Path, allow_download: bool) -> tuple[Path, dict[str, Any]]:
    """Return the CLIP weights file (downloading it when allowed) and open_clip options for its pretrained tag."""
    import open_clip

    arch, tag = clip_name.split("/", 1)
    weights_dir = models_dir / "open_clip"
    if arch not in open_clip.list_models():
        raise ModelNotFoundError(f"CLIP model {clip_name!r}: {arch!r} is not an open_clip architecture")
    tag_cfg = open_clip.get_pretrained_cfg(arch, tag)
    extra: dict[str, Any] = {}
    if tag_cfg:
        path = _open_clip_weights(tag_cfg, weights_dir=weights_dir, allow_download=allow_download, name=clip_name)
        # open_clip 3.x only warns when the tag needs QuickGELU (ViT-L-14/openai does): set it, as 2.x did.
        extra = {
            "force_quick_gelu": bool(tag_cfg.get("quick_gelu")),
            "image_mean": tag_cfg.get("mean"),
            "image_std": tag_cfg.get("std"),
            "image_interpolation": tag_cfg.get("interpolation"),
            "image_resize_mode": tag_cfg.get("resize_mode"),
        }
    elif (weights_dir / tag).is_file():
        path = weights_dir / tag
    else:
        tags = list(open_clip.list_pretrained_tags_by_model(arch))
        shown = ", ".join(tags[:6]) + (", ..." if len(tags) > 6 else "") if tags else "none"
        raise ModelNotFoundError(
            f"CLIP model {clip_name!r}: {tag!r} is neither a pretrained tag of {arch} ({shown}) nor a file in "
            f"{weights_dir}"
        )
    return path, extra


def load_clip_model(
    clip_name: str, source: tuple[Path, dict[str, Any]], *, models_dir: Path, device: str
) -> tuple[Any, Any]:
    """Load the open_clip model and its preprocessing from :func:`resolve_clip_model`'s source (on the CPU)."""
    import open_clip

    path, extra = source
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            clip_name.split("/", 1)[0],
            pretrained=str(path),
            precision="fp16" if device == "cuda" else "fp32",
            device="cpu",
            jit=False,
            cache_dir=str(models_dir / "open_clip"),
            **extra,
        )
    except Exception as exc:
        raise load_error(exc, what=f"CLIP model {clip_name!r}", where=models_dir, allow_download=True) from exc
    model.eval()
    return model, preprocess


def _open_clip_weights(tag_cfg: Mapping[str, Any], *, weights_dir: Path, allow_download: bool, name: str) -> Path:
    if allow_download:
        from open_clip.pretrained import download_pretrained

        try:
            return Path(download_pretrained(dict(tag_cfg), cache_dir=str(weights_dir)))
        except Exception as exc:
            raise load_error(exc, what=f"CLIP model {name!r}", where=weights_dir, allow_download=True) from exc
    hub, url = tag_cfg.get("hf_hub", ""), tag_cfg.get("url", "")
    if hub:
        from huggingface_hub import hf_hub_download

        repo, filename = hub.rstrip("/"), ""
        if not hub.endswith("/"):
            repo, filename = hub.rsplit("/", 1)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for candidate in names:
            try:
                return Path(hf_hub_download(repo, candidate, cache_dir=str(weights_dir), local_files_only=True))
            except Exception:  # not cached under this name: try the next
                continue
    if url and (weights_dir / Path(url).name).is_file():
        return weights_dir / Path(url).name
    raise ModelNotFoundError(
        f"CLIP model {name!r} is not in {weights_dir} and downloads are off. Allow downloads once (the InterStable "
        "setting, or the CLI's --download) or copy the weights there"
    )


def model_fingerprint(model: Any, *, samples: int = 64) -> str:
    """Return a short hash of a torch model's weights (names, shapes and a strided sample of every tensor).

    The sample is taken in float16, so the same weights give the same fingerprint in float32 and float16.
    """
    import torch

    digest = hashlib.blake2b(digest_size=8)
    with torch.no_grad():
        for key, tensor in sorted(model.state_dict().items()):
            digest.update(f"{key}:{tuple(tensor.shape)};".encode())
            if tensor.is_floating_point() and tensor.numel():
                flat = tensor.detach().reshape(-1)
                sample = flat[:: max(1, flat.numel() // samples)][:samples]
                digest.update(sample.to(device="cpu", dtype=torch.float16).numpy().tobytes())
    return digest.hexdigest()


def label_cache_dir(models_dir: Path, clip_name: str, clip_model: Any) -> Path:
    """Return (and create) the label embeddings folder for these CLIP weights: ``cache/<name>-<fingerprint>``."""
    import json

    fingerprint = model_fingerprint(clip_model)
    safe_name = re.sub(r"[^\w.-]+", "_", clip_name)
    folder = models_dir / "cache" / f"{safe_name}-{fingerprint}"
    folder.mkdir(parents=True, exist_ok=True)
    sidecar = folder / "model.json"
    if not sidecar.exists():
        sidecar.write_text(json.dumps({"clip_model": clip_name, "fingerprint": fingerprint}) + "\n", encoding="utf-8")
    return folder
