"""Image paths and decoding: never read outside the images root; decode any mode to RGB."""

from __future__ import annotations

import os
import warnings
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from labelfix.errors import InputError

# Decompression bombs are errors, not warnings: a labelling tool should not hang on one file.
warnings.simplefilter("error", Image.DecompressionBombWarning)


def safe_image_path(*, root: str | Path, file_name: str, source: str | Path | None = None,
                    record: str | None = None) -> Path:
    """Join ``file_name`` onto ``root``, refusing anything that escapes the root.

    Parameters
    ----------
    root
        The images directory given on the command line.
    file_name
        The relative path stored in the annotations.
    source, record
        Where the file name came from, for the error message.

    Returns
    -------
    Path
        The resolved path, inside ``root``.

    Raises
    ------
    InputError
        For an absolute path, a ``..`` component, or a symlink that leads outside ``root``.

    Examples
    --------
    >>> safe_image_path(root="/data/images", file_name="train/1.png").as_posix()
    '/data/images/train/1.png'
    """
    if not isinstance(file_name, str) or not file_name.strip():
        raise InputError("file_name is empty or not a string", file=source, record=record,
                         fix="give every image a relative file_name")
    posix, windows = PurePosixPath(file_name), PureWindowsPath(file_name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise InputError(f"file_name {file_name!r} is an absolute path", file=source, record=record,
                         fix="store file names relative to the --images directory")
    if ".." in posix.parts or ".." in windows.parts:
        raise InputError(f"file_name {file_name!r} escapes the images directory with '..'",
                         file=source, record=record,
                         fix="store file names relative to, and inside, the --images directory")
    root_resolved = Path(root).resolve()
    candidate = (root_resolved / file_name).resolve()
    if not candidate.is_relative_to(root_resolved):
        raise InputError(f"file_name {file_name!r} resolves outside the images directory "
                         f"(a symbolic link?)", file=source, record=record,
                         fix="copy the image inside the --images directory")
    return candidate


def check_image(path: Path, *, full: bool = True, source: str | Path | None = None,
                record: str | None = None) -> tuple[int, int]:
    """Check that ``path`` is a readable image and return its displayed (width, height).

    ``full=True`` decodes every pixel, which catches truncated files; ``full=False`` reads the header.
    The size is taken after EXIF orientation, as the image is shown and trained on.
    """
    if not path.exists():
        raise InputError(f"image file {path} does not exist", file=source, record=record,
                         fix="check --images points at the folder the file names are relative to")
    if not path.is_file():
        raise InputError(f"image path {path} is not a file", file=source, record=record,
                         fix="point file_name at an image file")
    if path.stat().st_size == 0:
        raise InputError(f"image file {path} is empty (0 bytes)", file=source, record=record,
                         fix="re-copy the image, or remove its record")
    try:
        with Image.open(path) as image:
            if full:
                image.load()
            else:
                image.verify()  # must come straight after open, and leaves the image unusable
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise InputError(f"image file {path} cannot be decoded ({error})", file=source, record=record,
                         fix="re-export the image as PNG or JPEG, or remove its record") from error
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: displayed size is swapped
        width, height = height, width
    return width, height


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode an image of any mode (grayscale, RGBA, CMYK, 16-bit) to 8-bit RGB, EXIF-oriented."""
    with Image.open(path) as opened:
        opened.load()
        image: Image.Image = ImageOps.exif_transpose(opened)
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            # 16-bit grayscale: rescale the full range to 8 bits instead of clipping.
            array = np.asarray(image, dtype=np.float32)
            top = float(array.max()) or 1.0
            image = Image.fromarray(np.rint(array * (255.0 / top)).clip(0, 255).astype(np.uint8), mode="L")
        elif image.mode == "F":
            array = np.asarray(image, dtype=np.float32)
            low, high = float(array.min()), float(array.max())
            scale = 255.0 / (high - low) if high > low else 0.0
            image = Image.fromarray(np.rint((array - low) * scale).clip(0, 255).astype(np.uint8), mode="L")
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        return image.convert("RGB")
