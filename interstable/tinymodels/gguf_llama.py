"""A tiny llama-architecture GGUF that ``llama-cpp-python`` loads in milliseconds.

The file has the shape of a Mistral-style model (grouped-query attention, SentencePiece vocabulary with byte fallback,
``[INST]``/``[/INST]`` control tokens, a chat template) and random weights from a seeded generator, so the same
arguments give a byte-identical file. About 0.4 MB; written in well under a second.

Random weights alone emit mostly byte tokens and control tokens. One residual channel is therefore reserved as a
constant: the embeddings set it, no layer writes to it and the norms before attention and the feed-forward block ignore
it, so after the final norm it is (nearly) the same for every position and the output matrix's column for it acts as a
per-token logit bias. Byte and control tokens get a large negative bias (clean word-piece text), the comma a positive
one (phrase-like text), pieces holding prompt syntax (``(``, ``#``, ``<``, ``AND``...) a small negative one (they do
appear without a grammar), and ``</s>`` the bias the caller chooses (the length of the output).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["CHATML_TEMPLATE", "MISTRAL_TEMPLATE", "TINY_WORDS", "write_tiny_llama"]

MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
"""Exactly ``llama_cpp.llama_chat_format.MISTRAL_INSTRUCT_CHAT_TEMPLATE`` (so ``chat_format == "mistral-instruct"``)."""

CHATML_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""A ChatML-like template with a system role; not one llama-cpp-python knows, so it goes through its Jinja path."""

_WORDS_TEXT = """
    a an the of in on at with by and under over near behind portrait landscape painting photo photograph drawing
    sketch illustration render art artwork scene view close-up wide shot cat dog fox owl horse dragon bird fish
    wolf bear deer rabbit tiger lion butterfly woman man girl boy child knight wizard witch robot astronaut
    samurai queen king castle tower house cabin village city street bridge temple ruins forest jungle garden
    field meadow mountain hill valley river lake sea ocean beach island desert canyon cave sky clouds sun moon
    stars night day sunset sunrise dawn dusk rain snow fog mist storm lightning fire smoke water ice light
    shadow red blue green yellow orange purple pink black white golden silver gray brown teal crimson pastel
    vivid muted warm cool dark bright soft hard glowing detailed intricate highly ultra sharp focus depth bokeh
    cinematic dramatic moody serene calm epic mystical magical whimsical surreal dreamy cozy lonely ancient
    futuristic medieval victorian steampunk cyberpunk fantasy realistic photorealistic hyperrealistic stylized
    minimalist abstract geometric watercolor oil acrylic ink pencil charcoal digital concept matte pixel anime
    manga comic cartoon lowpoly isometric volumetric lighting rim backlit studio natural ambient neon
    candlelight moonlight sunlight hour reflections texture fur feathers scales armor cloak dress hat crown
    sword shield book lantern flowers roses leaves trees vines moss mushrooms crystals gems clocks gears ships
    boats train car airship balloon window door stairs room library kitchen cathedral market harbor lighthouse
    windmill waterfall volcano glacier aurora nebula galaxy planet composition symmetry perspective silhouette
    grain film vintage retro modern baroque gothic rococo impressionism expressionism cubism ukiyo-e woodblock
    engraving mosaic stained glass tapestry sculpture marble bronze wooden stone brick paper metal silk velvet
    masterpiece quality award winning trending artstation
"""
TINY_WORDS: tuple[str, ...] = tuple(_WORDS_TEXT.split())
"""Whole-word pieces of the tiny vocabulary (each also gets a ``▁``-prefixed twin, as SentencePiece has)."""

_CONTROL_PIECES = ("[INST]", "[/INST]", "<|im_start|>", "<|im_end|>")
# Pieces that hold the WebUI's prompt syntax: they appear in unconstrained output, so tests can show that the grammar
# and the cleaning keep them out.
_SYNTAX_PIECES = ("(", ")", "[", "]", "{", "}", "<", ">", "#", ":", "|", '"', "\\", ":1.2", "▁AND", "▁BREAK", "▁#")
_CHARS = tuple("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.'-!?;")

_BIAS_BYTE = -14.0
_BIAS_CONTROL = -14.0
_BIAS_CHAR = -3.0
_BIAS_SYNTAX = -1.5
_BIAS_COMMA = 4.5


def _vocab() -> tuple[list[str], list[int], list[float]]:
    """Return (pieces, gguf token types, per-token logit biases without EOS)."""
    import gguf

    t = gguf.TokenType
    pieces = ["<unk>", "<s>", "</s>"]
    types = [t.UNKNOWN, t.CONTROL, t.CONTROL]
    biases = [-30.0, _BIAS_CONTROL, 0.0]
    for b in range(256):
        pieces.append(f"<0x{b:02X}>")
        types.append(t.BYTE)
        biases.append(_BIAS_BYTE)
    for piece in _CONTROL_PIECES:
        pieces.append(piece)
        types.append(t.CONTROL)
        biases.append(_BIAS_CONTROL)
    for piece, bias in [("▁", _BIAS_CHAR), (",", _BIAS_COMMA)] + [(c, _BIAS_CHAR) for c in _CHARS]:
        pieces.append(piece)
        types.append(t.NORMAL)
        biases.append(bias)
    for piece in _SYNTAX_PIECES:
        if piece not in pieces:
            pieces.append(piece)
            types.append(t.NORMAL)
            biases.append(_BIAS_SYNTAX)
    for word in TINY_WORDS:
        for piece in (f"▁{word}", word):
            if piece not in pieces:
                pieces.append(piece)
                types.append(t.NORMAL)
                biases.append(0.0 if piece.startswith("▁") else -2.5)
    return pieces, [int(x) for x in types], biases


def _add_metadata(
    writer: Any,
    *,
    name: str,
    context_length: int,
    n_embd: int,
    n_layers: int,
    n_head: int,
    n_head_kv: int,
    n_ff: int,
    pieces: list[str],
    types: list[int],
    template: str | None,
) -> None:
    """Add the hyperparameters and the tokenizer to ``writer``."""
    import gguf

    writer.add_name(name)
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(pieces))
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(pieces)
    writer.add_token_scores([-float(len(p)) if t == 1 else 0.0 for p, t in zip(pieces, types, strict=True)])
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if template is not None:
        writer.add_chat_template(template)


def write_tiny_llama(
    path: Path | str,
    *,
    template: str | None = MISTRAL_TEMPLATE,
    seed: int = 0,
    eos_bias: float = 2.5,
    bias_overrides: Mapping[str, float] | None = None,
    n_embd: int = 64,
    n_layers: int = 2,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    context_length: int = 4096,
    name: str = "interstable-tiny-llama",
) -> Path:
    """Write a tiny random llama GGUF to ``path`` and return the path.

    Args:
        path: The file to write (its folder must exist); overwritten if present.
        template: The ``tokenizer.chat_template`` to store, for example :data:`MISTRAL_TEMPLATE` or
            :data:`CHATML_TEMPLATE`; ``None`` stores none (like many older GGUF files).
        seed: Seed of the random weights; the same arguments give a byte-identical file.
        eos_bias: Logit bias of ``</s>``: about 2.5 ends a sampled text after a few dozen tokens, -30 never ends it,
            30 ends it at once.
        bias_overrides: Logit biases for given pieces (by their text, e.g. ``{"0": 40.0}`` makes the model write
            zeros); unknown pieces are an error.
        n_embd: Embedding width (a multiple of ``n_head``).
        n_layers: Number of transformer blocks.
        n_head: Attention heads.
        n_head_kv: Key/value heads (fewer than ``n_head`` is grouped-query attention, as in Mistral).
        n_ff: Feed-forward width.
        context_length: The training context length stored in the file.
        name: ``general.name``.

    Returns:
        ``Path(path)``.
    """
    import gguf
    import numpy as np

    path = Path(path)
    rng = np.random.default_rng(seed)
    pieces, types, biases = _vocab()
    biases[2] = float(eos_bias)
    for piece, bias in (bias_overrides or {}).items():
        biases[pieces.index(piece)] = float(bias)
    n_vocab = len(pieces)
    head_dim = n_embd // n_head
    n_embd_kv = head_dim * n_head_kv

    def normal(shape: tuple[int, ...], std: float) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float16)  # matrices in f16, norms in f32

    # Channel 0 is the constant "bias" channel: about as large as all the others together, so that after an RMS norm
    # it is close to sqrt(n_embd / 2) everywhere.
    const = float(np.sqrt(n_embd - 1))
    norm_const = const / float(np.sqrt((const**2 + (n_embd - 1)) / n_embd))
    token_embd = normal((n_vocab, n_embd), 1.0)
    token_embd[:, 0] = const
    output = normal((n_vocab, n_embd), float(np.sqrt(2.0 / (n_embd - 1))))
    output[:, 0] = np.asarray(biases, dtype=np.float32) / norm_const
    inner_norm = np.ones(n_embd, dtype=np.float32)
    inner_norm[0] = 0.0

    writer = gguf.GGUFWriter(str(path), "llama")
    _add_metadata(
        writer,
        name=name,
        context_length=context_length,
        n_embd=n_embd,
        n_layers=n_layers,
        n_head=n_head,
        n_head_kv=n_head_kv,
        n_ff=n_ff,
        pieces=pieces,
        types=types,
        template=template,
    )
    writer.add_tensor("token_embd.weight", token_embd)
    for i in range(n_layers):
        attn_out = normal((n_embd, n_embd), 0.05)
        attn_out[0, :] = 0.0  # nothing writes into the constant channel
        ffn_down = normal((n_embd, n_ff), 0.05)
        ffn_down[0, :] = 0.0
        writer.add_tensor(f"blk.{i}.attn_norm.weight", inner_norm.copy())
        writer.add_tensor(f"blk.{i}.attn_q.weight", normal((n_embd, n_embd), 0.3))
        writer.add_tensor(f"blk.{i}.attn_k.weight", normal((n_embd_kv, n_embd), 0.3))
        writer.add_tensor(f"blk.{i}.attn_v.weight", normal((n_embd_kv, n_embd), 0.3))
        writer.add_tensor(f"blk.{i}.attn_output.weight", attn_out)
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", inner_norm.copy())
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", normal((n_ff, n_embd), 0.2))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", normal((n_ff, n_embd), 0.2))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", ffn_down)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
