"""The "WD tagger" backend: SmilingWolf's WD v3 taggers (``model.onnx`` + ``selected_tags.csv``) through onnxruntime.

A tagger folder holds the two files as the Hub repositories ship them. The model takes one NHWC float32 image,
square, BGR, 0-255 (no normalisation; the side comes from the model's input shape, 448 for the v3 taggers) and
returns one probability per row of ``selected_tags.csv`` (``tag_id,name,category,count``; category 0 general,
4 character, 9 rating). The image is padded to a square on white, as the taggers were trained.

The caption is the character tags (by ``character_threshold``), then the general tags (by ``general_threshold``),
each sorted by probability; rating tags only when asked (the most likely one, first). Underscores become spaces
unless ``underscores`` is set (kaomoji such as ``^_^`` always keep theirs), and ``(``/``)`` are escaped so the WebUI
reads them as text, not emphasis.

``onnxruntime`` and ``numpy`` load on the first caption; :meth:`WdTaggerCaptioner.release` drops the session (its
memory goes back before the LLM and Stable Diffusion run).
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interstable.caption.checks import caption_error, to_rgb
from interstable.errors import CaptionError, ConfigError, InterStableError, ModelLoadError, ModelNotFoundError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["KAOMOJI", "MODEL_FILE", "TAGS_FILE", "Tag", "WdTaggerCaptioner", "format_tags", "read_tags"]

MODEL_FILE = "model.onnx"
TAGS_FILE = "selected_tags.csv"
_CATEGORIES = {"0": "general", "4": "character", "9": "rating"}
KAOMOJI = frozenset(
    {"0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9", ">_o", "@_@", "^_^",
     "o_o", "u_u", "x_x", "|_|", "||_||"}
)  # fmt: skip
"""Tags whose underscores are part of the face, never replaced."""


@dataclass(frozen=True)
class Tag:
    """One row of ``selected_tags.csv``: its name and category (``general``, ``character``, ``rating`` or ``other``)."""

    name: str
    category: str


def read_tags(path: Path) -> list[Tag]:
    """Read a ``selected_tags.csv`` (header ``tag_id,name,category,count``).

    Raises:
        ModelNotFoundError: The file is missing.
        ModelLoadError: It is not a tag list (no ``name``/``category`` columns, or no rows).
    """
    try:
        with Path(path).open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError as exc:
        raise ModelNotFoundError(
            f"the WD tagger's tag list {path} is missing: put {TAGS_FILE} next to the model"
        ) from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ModelLoadError(f"{path} cannot be read as a tag list ({type(exc).__name__}: {exc})") from exc
    if not rows or "name" not in rows[0] or "category" not in rows[0]:
        raise ModelLoadError(f"{path} is not a WD tag list: expected a header tag_id,name,category,count and rows")
    return [Tag(row["name"], _CATEGORIES.get(str(row["category"]).strip(), "other")) for row in rows]


def _escape(tag: str) -> str:
    return tag.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def format_tags(names: Sequence[str], *, underscores: bool = False) -> str:
    """Join tags for a prompt: `_` becomes a space (not with ``underscores``, not in kaomoji), ``()`` escaped."""
    out = []
    for name in names:
        text = name if underscores or name in KAOMOJI else name.replace("_", " ")
        out.append(_escape(text))
    return ", ".join(out)


class WdTaggerCaptioner:
    """Tags from a WD v3 tagger folder (``model.onnx`` + ``selected_tags.csv``), run by onnxruntime.

    Args:
        folder: The tagger folder.
        general_threshold: Lowest probability for a general tag (0-1).
        character_threshold: Lowest probability for a character tag (0-1).
        ratings: Put the most likely rating tag (general, sensitive, questionable, explicit) first.
        underscores: Keep the tags' underscores (``long_hair``) instead of spaces (``long hair``).
        providers: onnxruntime execution providers; None takes CUDA when onnxruntime has it, else the CPU.
        threads: onnxruntime intra-op threads (0: its default).
        background: Colour transparency is flattened onto before the white square padding.
    """

    name = "wd_tagger"

    def __init__(
        self,
        folder: Path | str,
        *,
        general_threshold: float = 0.35,
        character_threshold: float = 0.85,
        ratings: bool = False,
        underscores: bool = False,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        background: str | tuple[int, int, int] = "#ffffff",
    ) -> None:
        for field, value in (("general_threshold", general_threshold), ("character_threshold", character_threshold)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ConfigError(field, value, "give a probability from 0 to 1 (0.35 general, 0.85 character)")
        self.folder = Path(folder)
        self.general_threshold = float(general_threshold)
        self.character_threshold = float(character_threshold)
        self.ratings = bool(ratings)
        self.underscores = bool(underscores)
        self.providers = list(providers) if providers is not None else None
        self.threads = int(threads)
        self.background = background
        self._session: Any = None
        self._tags: list[Tag] = []
        self._lock = threading.Lock()

    @property
    def cache_token(self) -> str:
        """The folder and every option that changes the tags."""
        return (
            f"{self.folder.resolve()}|{self.general_threshold}|{self.character_threshold}|{self.ratings}|"
            f"{self.underscores}"
        )

    @property
    def loaded(self) -> bool:
        """Whether an onnxruntime session is held."""
        return self._session is not None

    def _load(self) -> Any:
        if self._session is not None:
            return self._session
        model = self.folder / MODEL_FILE
        if not model.is_file():
            raise ModelNotFoundError(
                f"no WD tagger in {self.folder}: it needs {MODEL_FILE} and {TAGS_FILE} (for example from "
                "https://huggingface.co/SmilingWolf/wd-vit-tagger-v3) in that folder; or choose another interrogator"
            )
        tags = read_tags(self.folder / TAGS_FILE)
        try:
            import onnxruntime
        except ImportError as exc:
            raise ModelLoadError(
                "the WD tagger needs onnxruntime: restart the WebUI so InterStable's install.py adds it, or run "
                "'pip install onnxruntime' in the WebUI's Python"
            ) from exc
        options = onnxruntime.SessionOptions()
        if self.threads > 0:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        available = onnxruntime.get_available_providers()
        providers = self.providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=providers)
        except Exception as exc:
            raise ModelLoadError(f"onnxruntime cannot load {model} ({type(exc).__name__}: {exc})") from exc
        outputs = session.get_outputs()[0].shape
        if outputs and isinstance(outputs[-1], int) and outputs[-1] != len(tags):
            raise ModelLoadError(
                f"{model} gives {outputs[-1]} scores but {TAGS_FILE} lists {len(tags)} tags: the two files are from "
                "different taggers; download both from the same repository"
            )
        self._session, self._tags = session, tags
        return session

    def _input(self, image: Image.Image, side: int) -> Any:
        import numpy as np
        from PIL import Image as PILImage

        rgb = to_rgb(image, background=self.background)
        width, height = rgb.size
        square = max(width, height)
        canvas = PILImage.new("RGB", (square, square), (255, 255, 255))
        canvas.paste(rgb, ((square - width) // 2, (square - height) // 2))
        if square != side:
            canvas = canvas.resize((side, side), PILImage.Resampling.BICUBIC)
        array = np.asarray(canvas, dtype=np.float32)[:, :, ::-1]  # RGB -> BGR, as the taggers were trained
        return np.ascontiguousarray(array)[None]

    def scores(self, image: Image.Image) -> list[tuple[Tag, float]]:
        """Every tag with its probability for ``image`` (the tag list's order)."""
        with self._lock:
            session = self._load()
            meta = session.get_inputs()[0]
            side = meta.shape[1] if isinstance(meta.shape[1], int) else 448
            try:
                probs = session.run(None, {meta.name: self._input(image, side)})[0][0]
            except InterStableError:
                raise
            except Exception as exc:
                raise caption_error(exc, backend="WD tagger") from exc
            return list(zip(self._tags, (float(p) for p in probs), strict=False))

    def caption(self, image: Image.Image) -> str:
        """Return the tags of ``image`` as a comma-separated prompt ("" when no tag passes its threshold).

        Raises:
            ModelNotFoundError: The folder lacks the model or the tag list.
            ModelLoadError: onnxruntime is missing or cannot load the model, or the two files do not match.
            CaptionError: onnxruntime failed on the image.
        """
        scored = self.scores(image)
        if not scored:
            raise CaptionError(f"the WD tagger in {self.folder} gave no scores")

        def picked(category: str, threshold: float) -> list[str]:
            found = [(p, t.name) for t, p in scored if t.category == category and p >= threshold]
            return [name for _, name in sorted(found, key=lambda item: -item[0])]

        names = picked("character", self.character_threshold) + picked("general", self.general_threshold)
        if self.ratings:
            ratings = [(p, t.name) for t, p in scored if t.category == "rating"]
            if ratings:
                names.insert(0, max(ratings)[1])
        return format_tags(names, underscores=self.underscores)

    def release(self) -> None:
        """Drop the onnxruntime session (and its memory); the next caption loads it again."""
        with self._lock:
            self._session = None
