"""Images in every form sources ship them (file paths, bytes, PIL, `datasets` dicts) to encoded bytes, and back.

Adapters keep images encoded (``{"bytes": ..., "path": None}`` under a `datasets.Image` feature)
instead of decoding them: loading stays fast, and a corrupt file is not an exception in the middle
of a `map` but a row the cleaning step counts and drops (`decode_image` tells which). What cannot
even be read -- a reference to nothing (`MissingImageError`) or a file the OS refuses
(`UnreadableImageError`) -- is counted and dropped by `load-data` itself; a value of a type no
image comes in is a `TypeError` (the column mapped as images is the wrong column).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError


class MissingImageError(ValueError):
    """An image reference points at nothing (no such file, empty value)."""


class UnreadableImageError(ValueError):
    """An image file exists but cannot be read (permissions, I/O error)."""


def to_image_bytes(value: Any, image_root: str | Path | None = None) -> bytes:
    """Encoded bytes of an image given as PIL, bytes, a path (absolute or under `image_root`) or an
    ``{"bytes", "path"}`` dict. Nothing is decoded, so corrupt bytes pass through (cleaning drops them).

    Raises `MissingImageError` / `UnreadableImageError` for a reference that cannot be read and
    `TypeError` for a value that is no kind of image.
    """
    if value is None:
        raise MissingImageError("image is null")
    if isinstance(value, Image.Image):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return buffer.getvalue()
    if isinstance(value, (bytes, bytearray, memoryview)):
        if not len(value):
            raise MissingImageError("image bytes are empty")
        return bytes(value)
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        if value.get("path"):
            return to_image_bytes(value["path"], image_root)
        raise MissingImageError(f"image dict has neither bytes nor path: keys {sorted(value)}")
    if isinstance(value, (str, Path)):
        if not str(value).strip():
            raise MissingImageError("image path is empty")
        path = Path(value)
        if not path.is_absolute() and image_root is not None:
            path = Path(image_root) / path
        if not path.is_file():
            raise MissingImageError(f"no such image file {path}")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise UnreadableImageError(f"cannot read image file {path} ({exc.strerror or exc})") from exc
    raise TypeError(f"cannot read an image from a {type(value).__name__}")


def image_bytes_of(value: Any) -> bytes | None:
    """The encoded bytes of a value read back from a `datasets.Image(decode=False)` column."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        if value.get("path") and Path(value["path"]).is_file():
            return Path(value["path"]).read_bytes()
        return None
    if isinstance(value, Image.Image):
        return to_image_bytes(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return None


def decode_image(data: bytes) -> Image.Image | None:
    """The decoded RGB image, or None when the bytes are not a readable image (truncated, not an image)."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()  # catches truncation and bad checksums that a lazy open would miss
        image = Image.open(io.BytesIO(data))
        image.load()
        return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def pixel_hash(image: Image.Image) -> str:
    """Exact content hash of the decoded pixels: the same picture saved as PNG or as BMP hashes the same."""
    rgb = image.convert("RGB")
    digest = hashlib.sha1(f"{rgb.size}".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def thumbnail(image: Image.Image, size: int = 32) -> bytes:
    """A size x size grayscale thumbnail (box-filtered), the unit of near-duplicate image comparison."""
    return image.convert("L").resize((size, size), Image.Resampling.BOX).tobytes()


def thumbnail_distance(a: bytes, b: bytes) -> float:
    """How different two thumbnails are, relative to how much each one deviates from flat grey.

    Perceptual hashes (aHash/dHash) call most diagrams the same picture: they are white pages with
    a little ink, and a 64-bit hash of a white page barely moves when a digit changes. Dividing the
    L1 difference by the images' own contrast measures change against the ink there is: ~0 for a
    re-encoded or resized copy, ~0.3 and up for a different drawing.
    """
    import numpy as np

    x = np.frombuffer(a, dtype=np.uint8).astype(np.float32)
    y = np.frombuffer(b, dtype=np.uint8).astype(np.float32)
    if x.shape != y.shape:
        return float("inf")
    contrast = np.abs(x - x.mean()).sum() + np.abs(y - y.mean()).sum()
    return float(np.abs(x - y).sum() / max(contrast, 1.0))
