"""A tiny random Stable Diffusion 1.x checkpoint that a real AUTOMATIC1111 loads and samples with, on the CPU.

Run it with the WebUI's own Python (it builds the model with the WebUI's ``ldm`` code, so the state dict has exactly
the keys the host expects)::

    venv/bin/python -m interstable.tinymodels.sd1 /path/to/stable-diffusion-webui

It writes ``models/Stable-diffusion/interstable-tiny-sd1.safetensors`` with its ``.yaml`` beside it (v1-inference with
tiny sizes: UNet 32 channels, VAE 32 channels with 8x downsampling, CLIP text 64-d with 3 layers), and a local
``openai/clip-vit-large-patch14`` folder under the WebUI root (tokenizer built from open_clip's bundled BPE plus the
tiny text config), which the SD1 text encoder finds before it would ask the model hub. Weights come from a seeded
generator; constant parameters (norm scales, zero-initialised output convolutions) get a small jitter, without which
sampling with random weights gives NaN. ``torch``, ``omegaconf``, ``transformers``, ``safetensors`` and ``open_clip``
are imported when the checkpoint is written, never at import time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

__all__ = ["CHECKPOINT_NAME", "FULL_CHECKPOINT_NAME", "TOKENIZER_FOLDER", "write_clip_tokenizer", "write_tiny_sd1"]

CHECKPOINT_NAME = "interstable-tiny-sd1.safetensors"
"""The file name of the tiny checkpoint under ``models/Stable-diffusion``."""
FULL_CHECKPOINT_NAME = "interstable-random-sd15.safetensors"
"""The full-size random SD1.5 (``full=True``): Forge detects the model type from tensor shapes, so tiny will not do."""
TOKENIZER_FOLDER = "openai/clip-vit-large-patch14"
"""The hub name the SD1 text encoder asks for; a folder of that name under the WebUI root is used first."""

_TEXT_CONFIG = {
    "architectures": ["CLIPTextModel"],
    "model_type": "clip_text_model",
    "vocab_size": 49408,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 64,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 1,
}
_FULL_TEXT_CONFIG = {  # CLIP ViT-L/14's text tower, as SD1.5 has it
    **_TEXT_CONFIG,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "projection_dim": 768,
}

_YAML = """\
model:
  base_learning_rate: 1.0e-04
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
    linear_start: 0.00085
    linear_end: 0.0120
    num_timesteps_cond: 1
    log_every_t: 200
    timesteps: 1000
    first_stage_key: "jpg"
    cond_stage_key: "txt"
    image_size: 64
    channels: 4
    cond_stage_trainable: false
    conditioning_key: crossattn
    monitor: val/loss_simple_ema
    scale_factor: 0.18215
    use_ema: False
    unet_config:
      target: ldm.modules.diffusionmodules.openaimodel.UNetModel
      params:
        image_size: 32
        in_channels: 4
        out_channels: 4
        model_channels: 32
        attention_resolutions: [ 1 ]
        num_res_blocks: 1
        channel_mult: [ 1, 2 ]
        num_heads: 2
        use_spatial_transformer: True
        transformer_depth: 1
        context_dim: 64
        use_checkpoint: False
        legacy: False
    first_stage_config:
      target: ldm.models.autoencoder.AutoencoderKL
      params:
        embed_dim: 4
        monitor: val/rec_loss
        ddconfig:
          double_z: true
          z_channels: 4
          resolution: 256
          in_channels: 3
          out_ch: 3
          ch: 32
          ch_mult: [ 1, 1, 1, 1 ]
          num_res_blocks: 1
          attn_resolutions: []
          dropout: 0.0
        lossconfig:
          target: torch.nn.Identity
    cond_stage_config:
      target: ldm.modules.encoders.modules.FrozenCLIPEmbedder
"""


def write_clip_tokenizer(folder: Path) -> Path:
    """Writes a CLIP tokenizer (``vocab.json``, ``merges.txt``) built from CLIP's BPE file (open_clip ships it).

    Args:
        folder: where to write; created if missing.

    Returns:
        The folder.
    """
    from interstable.prompt.clip_bpe import byte_encoder, find_bpe_file, read_merges

    bpe_path = find_bpe_file()
    if bpe_path is None:
        raise FileNotFoundError("CLIP's bpe_simple_vocab_16e6.txt.gz was not found: install open_clip_torch")
    merges = read_merges(bpe_path)
    vocab = list(byte_encoder().values())
    vocab += [piece + "</w>" for piece in vocab]
    vocab += ["".join(pair) for pair in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({piece: i for i, piece in enumerate(vocab)}), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(pair) for pair in merges) + "\n", encoding="utf-8"
    )
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    (folder / "special_tokens_map.json").write_text(json.dumps({**special, "pad_token": "<|endoftext|>"}))
    tokenizer_config = {**special, "pad_token": "<|endoftext|>", "model_max_length": 77, "do_lower_case": True}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    (folder / "config.json").write_text(json.dumps(_TEXT_CONFIG))
    return folder


def write_tiny_sd1(webui_root: Path, *, seed: int = 0, full: bool = False, target: Path | None = None) -> Path:
    """Writes the tiny checkpoint, its yaml and the local tokenizer folder into a WebUI tree.

    Args:
        webui_root: the A1111 folder (with ``repositories/stable-diffusion-stability-ai``, whose ``ldm`` builds it).
        seed: seeds the random weights; the same seed gives the same weights.
        full: write a full-size random SD1.5 instead (v1-inference's own sizes, CLIP ViT-L/14 text, fp16, 2.1 GB,
            no yaml), for hosts that detect the model from tensor shapes (Forge).
        target: the checkpoint's path (default: ``models/Stable-diffusion/`` of ``webui_root``).

    Returns:
        The checkpoint's path.
    """
    sys.path.insert(0, str(webui_root / "repositories" / "stable-diffusion-stability-ai"))
    import torch
    from ldm.util import instantiate_from_config
    from omegaconf import OmegaConf
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer_dir = write_clip_tokenizer(webui_root / TOKENIZER_FOLDER)
    torch.manual_seed(seed)
    yaml_text = (webui_root / "configs" / "v1-inference.yaml").read_text(encoding="utf-8") if full else _YAML
    config = OmegaConf.create(yaml_text)
    with tempfile.TemporaryDirectory() as text_dir:
        # FrozenCLIPEmbedder loads its weights with from_pretrained: give it a random model of the right size.
        CLIPTextModel(CLIPTextConfig(**(_FULL_TEXT_CONFIG if full else _TEXT_CONFIG))).save_pretrained(text_dir)
        for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
            (Path(text_dir) / name).write_bytes((tokenizer_dir / name).read_bytes())
        config.model.params.cond_stage_config.params = {"version": text_dir}
        model = instantiate_from_config(config.model)
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, tensor in model.state_dict().items():
        value = tensor.detach().clone().float()
        if value.is_floating_point() and value.numel() > 1 and float(value.std()) == 0.0:
            value += 0.02 * torch.randn(value.shape, generator=generator)
        state[key] = (value.half() if full else value).contiguous()
    del model
    name = FULL_CHECKPOINT_NAME if full else CHECKPOINT_NAME
    checkpoint = target or webui_root / "models" / "Stable-diffusion" / name
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(checkpoint))
    if not full:
        checkpoint.with_suffix(".yaml").write_text(_YAML, encoding="utf-8")
    return checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("webui_root", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", action="store_true", help="a full-size random SD1.5 (2.1 GB, for Forge)")
    parser.add_argument("--target", type=Path, default=None, help="where to write the checkpoint")
    args = parser.parse_args(argv)
    write_tiny_sd1(args.webui_root, seed=args.seed, full=args.full, target=args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
