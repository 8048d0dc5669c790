"""A tiny WD-tagger-shaped ONNX model and its ``selected_tags.csv``, written with the ``onnx`` package.

It has the interface of SmilingWolf's v3 taggers (one NHWC float32 BGR 0-255 input, one row of probabilities per
tag, the tag list's categories 0/4/9) and a readable behaviour, so tests can tell a right preprocessing from a wrong
one: each tag's logit is ``w · mean(B, G, R) / 255 + b``. A red image gives ``red_background`` (an RGB/BGR mix-up
gives ``blue_sky`` instead), a green one ``hatsune_miku``, a blue one ``blue_sky`` and ``saber_(fate)``; the
other tags have fixed probabilities (see :data:`TINY_TAGS`). A few kilobytes, written in milliseconds.
"""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["TINY_TAGS", "tiny_tag_probability", "write_tiny_tagger"]

# name, category (0 general, 4 character, 9 rating), weights on (B, G, R) means in 0-1, bias
TINY_TAGS: tuple[tuple[str, int, tuple[float, float, float], float], ...] = (
    ("general", 9, (0.0, 0.0, 0.0), 2.0),
    ("sensitive", 9, (0.0, 0.0, 0.0), 0.0),
    ("questionable", 9, (0.0, 0.0, 0.0), -2.0),
    ("explicit", 9, (0.0, 0.0, 0.0), -4.0),
    ("1girl", 0, (0.0, 0.0, 0.0), 1.0),
    ("solo", 0, (0.0, 0.0, 0.0), -1.0),
    ("looking_at_viewer", 0, (0.0, 0.0, 0.0), -0.2),
    ("^_^", 0, (0.0, 0.0, 0.0), 0.5),
    ("red_background", 0, (-4.0, -4.0, 12.0), -6.0),
    ("blue_sky", 0, (12.0, -4.0, -4.0), -6.0),
    ("hatsune_miku", 4, (-4.0, 12.0, -4.0), -6.0),
    ("saber_(fate)", 4, (12.0, -4.0, -4.0), -6.5),
)
"""The tiny tagger's tags and how it scores them."""

INPUT_SIDE = 32


def tiny_tag_probability(name: str, rgb: tuple[float, float, float]) -> float:
    """The probability the tiny tagger gives ``name`` for a flat image of colour ``rgb`` (0-255 each)."""
    (weights, bias) = next((w, b) for n, _, w, b in TINY_TAGS if n == name)
    bgr = (rgb[2] / 255.0, rgb[1] / 255.0, rgb[0] / 255.0)
    logit = sum(w * c for w, c in zip(weights, bgr, strict=True)) + bias
    return 1.0 / (1.0 + math.exp(-logit))


def write_tiny_tagger(folder: Path | str, *, side: int = INPUT_SIDE, extra_tags: int = 0) -> Path:
    """Write ``model.onnx`` and ``selected_tags.csv`` into ``folder`` (created) and return the folder.

    Args:
        folder: Where the two files go.
        side: The model's square input side (the real v3 taggers use 448).
        extra_tags: Rows added to the tag list only (a tag list that does not match the model, for error tests).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = np.array([w for _, _, w, _ in TINY_TAGS], dtype=np.float32).T  # (3, n_tags)
    biases = np.array([b for *_, b in TINY_TAGS], dtype=np.float32)
    n_tags = len(TINY_TAGS)
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1, 2], keepdims=0),
        helper.make_node("Mul", ["mean", "scale"], ["unit"]),
        helper.make_node("MatMul", ["unit", "weights"], ["logits0"]),
        helper.make_node("Add", ["logits0", "biases"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "interstable-tiny-wd-tagger",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", side, side, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", n_tags])],
        initializer=[
            numpy_helper.from_array(np.array([1.0 / 255.0], dtype=np.float32), "scale"),
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(biases, "biases"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="interstable")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    lines = ["tag_id,name,category,count"]
    rows = [(name, category) for name, category, _, _ in TINY_TAGS]
    rows += [(f"extra_tag_{i}", 0) for i in range(extra_tags)]
    for i, (name, category) in enumerate(rows):
        name_field = f'"{name}"' if "," in name else name
        lines.append(f"{100 + i},{name_field},{category},{1000 - i}")
    (folder / "selected_tags.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
