"""Image files → the input of an image model, driven by its ONNX metadata; Pillow + numpy only.

An image model's metadata gives the input shape ``[C, H, W]`` and the normalisation
``x = (pixel · scale − mean) / std`` per channel (pixels in 0–255 units, ``scale = 1/255``), the
same arithmetic as training (``snnzoo.zoo.training.data.to_input``, float32, bit for bit).

Decoding (`load_image`):

- **Format** by content (Pillow): PNG, JPEG, BMP, GIF, TIFF, WebP, PNM…; the first frame of
  animations. EXIF orientation is applied (phone photos come upright). ICC profiles are ignored
  (as in timm and torchvision).
- **Channels**: C = 3 → RGB (grey is replicated, CMYK/YCbCr/LAB/HSV and palettes are converted);
  C = 1 → luma L = 0.299 R + 0.587 G + 0.114 B (Pillow's ``L``).
- **Bit depth**: 8-bit as is; 16-bit grey (mode ``I;16``) exactly, pixel = v / 257 (65535 ↦ 255);
  16-bit colour PNGs are reduced by Pillow to their high byte (an error ≤ 1/255, below the JPEG
  noise of the training images). 32-bit integer and float pixels (modes ``I``, ``F``) carry no
  known white level and are refused.
- **Transparency** (alpha channel, transparent palette entry): the image is composited onto the
  training mean colour, whose normalised value is 0, so ``x = α · (pixel · scale − mean) / std``
  with ``α ∈ [0, 1]``: a transparent pixel says nothing, and neither does the model's input there.
- **Size**: an image of another size than ``H × W`` is **refused** (one line naming both sizes)
  unless ``resize=True``. A CIFAR-10 model saw 32×32 thumbnails of centred objects, with only
  pad-crop and flip augmentation; a 4000×3000 photo shrunk 100× is far outside that, and a
  silent resize would make its answer look as trustworthy as one on a real 32×32 input. timm
  resizes by default because ImageNet models are trained on random-resized crops of photos of
  every size, so its eval resize matches their training; ours do not. ``resize=True`` (CLI
  ``--resize``) does timm's eval transform with crop fraction 1: scale so the image covers
  ``H × W`` (the shorter side for square inputs), antialiased bicubic in float32 on each
  premultiplied channel (Pillow, mode ``F``), then a centre crop (offset ``(size − H) // 2``).
  Refusing also means a huge photo is rejected from its header, before its pixels are decoded.

Every failure raises `ImageFileError` ``"PATH: reason"`` (one line).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EventFileError

# suffixes searched for in folders (a named file is opened whatever its suffix)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                    ".ppm", ".pgm", ".pbm", ".pnm")
_ORIENTATION = 0x0112  # EXIF tag; values 5–8 swap width and height
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class ImageFileError(EventFileError):
    """An unreadable or unsuitable image file; ``str()`` is the one line ``"PATH: reason"``.

    A subclass of `EventFileError` so that every handler of bad input files catches both."""


@dataclass(frozen=True)
class ImageSpec:
    """An image model's input: ``shape = (C, H, W)`` and ``x = (pixel · scale − mean) / std``."""

    shape: tuple[int, int, int]
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        c = self.shape[0] if len(self.shape) == 3 else 0
        if c not in (1, 3) or len(self.mean) != c or len(self.std) != c:
            raise ValueError(f"image input [C, H, W] = {list(self.shape)} with mean {list(self.mean)}, "
                             f"std {list(self.std)}: need C = 1 or 3 and one mean and std per channel")

    @classmethod
    def from_input(cls, shape: Any, norm: dict[str, Any]) -> "ImageSpec":
        """From a config's/metadata's shape ``[C, H, W]`` and ``{scale, mean, std}``."""
        return cls(tuple(int(v) for v in shape), float(norm["scale"]),
                   tuple(float(v) for v in norm["mean"]), tuple(float(v) for v in norm["std"]))

    @property
    def size(self) -> tuple[int, int]:
        """``(W, H)``, Pillow's order."""
        return self.shape[2], self.shape[1]

    def normalize(self, pixels: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
        """``[..., H, W, C]`` pixels (0–255 units) → float32 ``[..., C, H, W]`` model input.

        With ``alpha`` (``[..., H, W]`` in [0, 1]) the pixels are premultiplied (``α · pixel``) and
        composited onto the mean colour: ``x = (α·pixel · scale − α · mean) / std``."""
        x = np.asarray(pixels, np.float32)
        if x.shape[-3:] != (*self.shape[1:], self.shape[0]):
            raise ValueError(f"pixels of shape {list(x.shape)} do not fit [..., H, W, C] = "
                             f"[..., {self.shape[1]}, {self.shape[2]}, {self.shape[0]}]")
        mean, std = np.float32(self.mean), np.float32(self.std)
        if alpha is None:
            x = (x * np.float32(self.scale) - mean) / std
        else:
            x = (x * np.float32(self.scale) - np.asarray(alpha, np.float32)[..., None] * mean) / std
        return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def describe_image(path: str | os.PathLike) -> str | None:
    """``"a PNG image (500×375, RGB)"`` when Pillow recognises ``path`` as an image, else None
    (reads the header only)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return f"a {im.format} image ({im.width}×{im.height}, {im.mode})"
    except Exception:  # not an image, or not readable: the caller reports its own reason
        return None


def image_not_events(path: str | os.PathLike, hint: str) -> EventFileError | None:
    """For an event reader's failure on ``path``: ``PATH: a PNG image (…), not an event file<hint>``
    when Pillow recognises it as an image, else None (the reader's own error stands)."""
    image = describe_image(path)
    return None if image is None else EventFileError(path, f"{image}, not an event file{hint}")


def load_image(path: str | os.PathLike, spec: ImageSpec, model: str = "the model",
               resize: bool = False) -> np.ndarray:
    """Decode, check or resize and normalise one image file → float32 ``[C, H, W]`` (module doc)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise ImageFileError(path, "no such file")
    if path.is_dir():
        raise ImageFileError(path, "is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageFileError(path, "empty file (0 bytes)")
    try:
        im = Image.open(path)
    except UnidentifiedImageError:
        raise ImageFileError(path, _not_an_image(path, model)) from None
    except PermissionError as e:
        raise ImageFileError(path, f"cannot read ({e.strerror})") from None
    except Exception as e:  # truncated or corrupt header
        raise ImageFileError(path, f"corrupt image ({_one_line(e)})") from None
    with im:
        what = f"{im.format} image"
        try:
            w, h = im.size
            if _orientation(im) in (5, 6, 7, 8):
                w, h = h, w
        except Exception as e:  # a corrupt EXIF block
            raise ImageFileError(path, f"corrupt {what} ({_one_line(e)})") from None
        if (w, h) != spec.size and not resize:  # refused from the header, before decoding
            raise _size_error(path, what, (w, h), spec.size, model)
        if im.mode in ("I", "F"):
            raise ImageFileError(path, f"{what} with 32-bit {'integer' if im.mode == 'I' else 'float'} "
                                       "pixels (no known white level); save it with 8 or 16 bits")
        try:
            im.load()
            im = ImageOps.exif_transpose(im)
            color, alpha = _channels(im, spec.shape[0])
        except Exception as e:  # truncated data, bad checksum, decoder error
            raise ImageFileError(path, f"corrupt {what} ({_one_line(e)})") from None
    if color.shape[:2] != spec.shape[1:]:
        if not resize:  # an orientation tag found only while decoding
            raise _size_error(path, what, color.shape[1::-1], spec.size, model)
        color, alpha = _cover_and_crop(color, alpha, spec.size)
    return spec.normalize(color, alpha)


def _size_error(path: Path, what: str, size: tuple[int, int], want: tuple[int, int],
                model: str) -> ImageFileError:
    (w, h), (W, H) = size, want
    return ImageFileError(path, f"{what} is {w}×{h} (W×H); {model} takes {W}×{H} images "
                                "(resize it, or pass --resize to scale and centre-crop)")


def _orientation(im: Any) -> int:
    """The EXIF orientation known from the header (1 = upright). Pillow finds a PNG's EXIF only
    by decoding unless it precedes the pixels; `load_image` checks the size again after decoding."""
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    return int(im.getexif().get(_ORIENTATION, 1))


def _channels(im: Any, c: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Float32 ``[H, W, C]`` pixels in 0–255 units and ``α`` ``[H, W]`` in [0, 1] (None if opaque),
    the pixels premultiplied by ``α``."""
    if im.mode.startswith("I;16"):
        grey = np.asarray(im).astype(np.float32) / np.float32(257.0)
        return np.repeat(grey[..., None], c, axis=-1), None
    alpha = None
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        im = im.convert("RGBA")
        alpha = np.asarray(im.getchannel("A"), np.float32) / np.float32(255.0)
    im = im.convert("RGB")
    if c == 1:
        im = im.convert("L")
    color = np.asarray(im, np.float32).reshape(im.height, im.width, c)
    return (color if alpha is None else color * alpha[..., None]), alpha


def _cover_and_crop(color: np.ndarray, alpha: np.ndarray | None,
                    size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Scale so the image covers ``size = (W, H)`` (antialiased bicubic, float32), centre-crop."""
    from PIL import Image

    (W, H), (h, w) = size, color.shape[:2]
    f = max(W / w, H / h)
    nw, nh = max(W, round(w * f)), max(H, round(h * f))
    left, top = (nw - W) // 2, (nh - H) // 2

    def fit(plane: np.ndarray) -> np.ndarray:
        out = Image.fromarray(np.ascontiguousarray(plane, np.float32), "F").resize(
            (nw, nh), Image.Resampling.BICUBIC)
        return np.asarray(out)[top:top + H, left:left + W]

    color = np.stack([fit(color[..., k]) for k in range(color.shape[-1])], axis=-1)
    return color, (fit(alpha) if alpha is not None else None)


def _not_an_image(path: Path, model: str) -> str:
    """Why Pillow found no image: an event file is named as such (the model takes images)."""
    from .readers import sniff_format

    try:
        fmt = sniff_format(path)
    except EventFileError:
        with open(path, "rb") as f:
            head = f.read(8)
        return f"not an image (no image format recognised; content starts with {head!r})"
    return f"an event file ({fmt}), not an image; {model} takes images"


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__
