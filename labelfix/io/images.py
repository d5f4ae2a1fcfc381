"""Image paths and decoding: never read outside the images root; decode any mode to RGB."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from labelfix.errors import InputError

# Decompression bombs are errors, not warnings: a labelling tool should not hang on one file.
warnings.simplefilter("error", Image.DecompressionBombWarning)


# Starts with neither '/' nor '.', ends without '/', no backslash, colon or control character.
_PLAIN_NAME = re.compile(r"[^/.\\:\x00-\x1f][^\\:\x00-\x1f]*(?<![/ ])")


def normalize_file_name(file_name: object, *, source: str | Path | None = None, record: str | None = None) -> str:
    """A stored ``file_name`` as a clean relative POSIX path, checked without touching the disk.

    Windows separators become ``/`` (``images\\x.png`` is ``images/x.png``: a file name written on Windows),
    ``./`` and repeated separators go, and ``dir/..`` is dropped (the name stays inside the folder).

    Raises
    ------
    InputError
        For an empty name, an absolute path or a ``..`` that leads out of the images folder.

    Examples
    --------
    >>> normalize_file_name("images\\\\train\\\\1.png")
    'images/train/1.png'
    >>> normalize_file_name("./a//b.png")
    'a/b.png'
    >>> normalize_file_name("./sub/../1.png")
    '1.png'
    """
    if isinstance(file_name, str) and _PLAIN_NAME.fullmatch(file_name) and "//" not in file_name \
            and "/." not in file_name:
        return file_name  # the usual name (COCO's 000000391895.jpg, train/a.png): nothing to clean or refuse
    if not isinstance(file_name, str) or not file_name.strip():
        raise InputError(f"file_name {file_name!r} is empty or not a string", file=source, record=record,
                         fix="give every image a relative file_name")
    posix, windows = PurePosixPath(file_name), PureWindowsPath(file_name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise InputError(f"file_name {file_name!r} is an absolute path", file=source, record=record,
                         fix="store file names relative to the --images directory")
    parts: list[str] = []
    for part in file_name.replace("\\", "/").split("/"):
        if part == "..":
            if not parts:  # above the images folder
                raise InputError(f"file_name {file_name!r} escapes the images directory with '..'",
                                 file=source, record=record,
                                 fix="store file names relative to, and inside, the --images directory")
            parts.pop()  # lexically, as os.path.normpath: "sub/../1.png" is "1.png", inside the folder
        elif part not in ("", "."):
            parts.append(part)
    if not parts:
        raise InputError(f"file_name {file_name!r} names no file", file=source, record=record,
                         fix="give every image a relative file_name")
    return "/".join(parts)


def image_file_key(root: str | Path | None, file_name: str) -> str:
    """The identity of an image: its file, as ``root/file_name`` (``file_name`` alone without a root).

    ``root`` is resolved once by the caller and ``file_name`` is normalised, so no path is resolved here.
    """
    return file_name if root is None else f"{Path(root).as_posix().rstrip('/')}/{file_name}"


def safe_image_path(*, root: str | Path, file_name: str, source: str | Path | None = None,
                    record: str | None = None) -> Path:
    """Join ``file_name`` onto ``root``, refusing anything that escapes the root.

    Parameters
    ----------
    root
        The images directory given on the command line.
    file_name
        The relative path stored in the annotations (Windows separators are accepted).
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
    relative = normalize_file_name(file_name, source=source, record=record)
    root_resolved = Path(root).resolve()
    candidate = (root_resolved / relative).resolve()
    if not candidate.is_relative_to(root_resolved):
        raise InputError(f"file_name {file_name!r} resolves outside the images directory "
                         f"(a symbolic link?)", file=source, record=record,
                         fix="copy the image inside the --images directory")
    return candidate


def _inspect(path: Path, full: bool) -> tuple[tuple[int, int] | None, str, str]:
    """((width, height), "", "") for a readable image, else (None, kind of problem, detail)."""
    if not path.exists():
        return None, "missing", ""
    if not path.is_file():
        return None, "not a file", ""
    if path.stat().st_size == 0:
        return None, "empty", ""
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
        return None, "undecodable", str(error)
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: displayed size is swapped
        width, height = height, width
    return (width, height), "", ""


_PROBLEMS = {  # kind: (what is wrong with one file, with several, the fix)
    "missing": ("does not exist", "do not exist",
                "check --images points at the folder the file names are relative to, or remove the records "
                "of the missing images"),
    "not a file": ("is not a file", "are not files", "point file_name at an image file"),
    "empty": ("is empty (0 bytes)", "are empty (0 bytes)", "re-copy the images, or remove their records"),
    "undecodable": ("cannot be decoded", "cannot be decoded",
                    "re-export the images as PNG or JPEG, or remove their records"),
}
SHOWN_NAMES = 10  # file names listed in a message about many files


def check_image(path: Path, *, full: bool = True, source: str | Path | None = None,
                record: str | None = None) -> tuple[int, int]:
    """Check that ``path`` is a readable image and return its displayed (width, height).

    ``full=True`` decodes every pixel, which catches truncated files; ``full=False`` reads the header.
    The size is taken after EXIF orientation, as the image is shown and trained on.
    """
    size, kind, detail = _inspect(path, full)
    if size is None:
        one, _, fix = _PROBLEMS[kind]
        what = f"image file {path} {one}" + (f" ({detail})" if detail else "")
        raise InputError(what, file=source, record=record,
                         fix=fix.replace("the images", "the image").replace("their records", "its record"))
    return size


def check_image_files(files: list[tuple[Path, str, str]], *, full: bool, source: str | Path | None = None,
                      progress: bool = False) -> list[tuple[int, int]]:
    """Check many image files; return their displayed (width, height), in order.

    Parameters
    ----------
    files
        (resolved path, file name as listed, record) of each image; the record (e.g. ``image id 7``)
        is named when a single file has a problem.

    Raises
    ------
    InputError
        One message for all the problems found: per kind (missing, empty, undecodable, not a file), how
        many files and the first names, so one run finds them all.
    """
    from tqdm import tqdm

    sizes: list[tuple[int, int]] = []
    problems: dict[str, list[str]] = {}
    first: tuple[Path, str] | None = None
    for path, name, record in tqdm(files, desc="checking images", unit="img", disable=not progress or None,
                                   leave=False):
        size, kind, detail = _inspect(path, full)
        if size is None:
            problems.setdefault(kind, []).append(f"{name} ({detail})" if detail else name)
            first = first or (path, record)
            continue
        sizes.append(size)
    if not problems:
        return sizes
    if first is not None and sum(map(len, problems.values())) == 1:
        check_image(first[0], full=full, source=source, record=first[1])  # the one-file message, with its record
    parts, fixes = [], []
    for kind, names in problems.items():
        one, several, fix = _PROBLEMS[kind]
        listed = ", ".join(names[:SHOWN_NAMES]) + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES
                                                   else "")
        parts.append(f"{len(names)} of {len(files)} image files {several if len(names) > 1 else one}: {listed}")
        fixes.append(fix)
    raise InputError("; ".join(parts), file=source, fix="; ".join(fixes))


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
