"""A tiny vision model for llama.cpp's multimodal path: a tiny llama GGUF plus a tiny LLaVA-style ``mmproj``.

The projector is a CLIP vision tower of llama.cpp's ``mlp`` projector type (LLaVA 1.5's): image 32 px, patch 8,
width 32, one block, a two-layer MLP into the text model's 64-wide embeddings. ``mtmd`` loads it, encodes an image
into 16 embeddings and the text model decodes after them, so the real llama-cpp-python chat handlers (the generic
``MTMDChatHandler`` and the Llava-1.5 family: Qwen2.5-VL, Moondream) run end to end. Random seeded weights: the
same arguments give byte-identical files; different images give different embeddings (and usually other words).

What llama.cpp needed (libmtmd of llama-cpp-python 0.3.36): ``general.architecture = "clip"``,
``clip.has_vision_encoder``, ``clip.projector_type = "mlp"``, ``clip.vision.{image_size, patch_size,
embedding_length, feed_forward_length, projection_dim, attention.head_count, attention.layer_norm_epsilon,
block_count, image_mean, image_std}``, ``clip.use_gelu``; tensors ``v.patch_embd.weight``, ``v.class_embd``,
``v.position_embd.weight``, ``v.pre_ln``, ``v.blk.N.{attn_q, attn_k, attn_v, attn_out, ln1, ln2, ffn_up, ffn_down}``
(weights and biases) and ``mm.0``/``mm.2``. ``projection_dim`` must equal the text model's ``n_embd``.
"""

from __future__ import annotations

from pathlib import Path

from interstable.tinymodels.gguf_llama import write_tiny_llama

__all__ = ["VISION_TEMPLATE", "write_tiny_mmproj", "write_tiny_vision"]

VISION_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""A ChatML template that reads list contents (text parts, and the media marker the handler puts in their place)."""


def write_tiny_mmproj(
    path: Path | str,
    *,
    projection_dim: int = 64,
    width: int = 32,
    image_size: int = 32,
    patch_size: int = 8,
    n_layers: int = 1,
    seed: int = 0,
) -> Path:
    """Write a tiny ``mlp``-type CLIP projector GGUF to ``path`` and return the path."""
    import gguf
    import numpy as np

    path = Path(path)
    rng = np.random.default_rng(seed)
    ff = 2 * width

    def normal(*shape: int, std: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)

    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_name("interstable-tiny-mmproj")
    writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    writer.add_clip_has_vision_encoder(True)
    writer.add_clip_projector_type("mlp")
    writer.add_vision_image_size(image_size)
    writer.add_vision_patch_size(patch_size)
    writer.add_vision_embedding_length(width)
    writer.add_vision_feed_forward_length(ff)
    writer.add_vision_projection_dim(projection_dim)
    writer.add_vision_head_count(4)
    writer.add_vision_attention_layernorm_eps(1e-6)
    writer.add_vision_block_count(n_layers)
    writer.add_vision_image_mean([0.5, 0.5, 0.5])
    writer.add_vision_image_std([0.5, 0.5, 0.5])
    writer.add_vision_use_gelu(True)
    n_pos = (image_size // patch_size) ** 2 + 1
    writer.add_tensor("v.patch_embd.weight", normal(width, 3, patch_size, patch_size, std=0.5))
    writer.add_tensor("v.class_embd", normal(width))
    writer.add_tensor("v.position_embd.weight", normal(n_pos, width))
    writer.add_tensor("v.pre_ln.weight", ones(width))
    writer.add_tensor("v.pre_ln.bias", zeros(width))
    for i in range(n_layers):
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            writer.add_tensor(f"v.blk.{i}.{name}.weight", normal(width, width))
            writer.add_tensor(f"v.blk.{i}.{name}.bias", zeros(width))
        for name in ("ln1", "ln2"):
            writer.add_tensor(f"v.blk.{i}.{name}.weight", ones(width))
            writer.add_tensor(f"v.blk.{i}.{name}.bias", zeros(width))
        writer.add_tensor(f"v.blk.{i}.ffn_up.weight", normal(ff, width))
        writer.add_tensor(f"v.blk.{i}.ffn_up.bias", zeros(ff))
        writer.add_tensor(f"v.blk.{i}.ffn_down.weight", normal(width, ff))
        writer.add_tensor(f"v.blk.{i}.ffn_down.bias", zeros(width))
    writer.add_tensor("mm.0.weight", normal(projection_dim, width, std=0.5))
    writer.add_tensor("mm.0.bias", zeros(projection_dim))
    writer.add_tensor("mm.2.weight", normal(projection_dim, projection_dim, std=0.5))
    writer.add_tensor("mm.2.bias", zeros(projection_dim))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_tiny_vision(
    folder: Path | str, *, stem: str = "tiny-vision", template: str | None = VISION_TEMPLATE, seed: int = 0
) -> tuple[Path, Path]:
    """Write ``{stem}.gguf`` (a tiny llama) and ``mmproj-{stem}-f32.gguf`` into ``folder``; return both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = write_tiny_llama(folder / f"{stem}.gguf", template=template, seed=seed, name=f"interstable-{stem}")
    mmproj = write_tiny_mmproj(folder / f"mmproj-{stem}-f32.gguf", seed=seed)
    return model, mmproj
