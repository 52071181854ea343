"""Model registry, weights (official download or a local file) and the Embedder.

Every model turns a batch of RGB images into L2-normalised float32 vectors. The whole image is
resized to the model's square input (no centre crop), so a crop or border edit of a photo still
sees the same content as the original.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import threading
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from vitgallery.core.imageio import model_pixels

if TYPE_CHECKING:  # imported where used: listing models, or a library's duplicates, need no torch (2 s, 0.5 GB)
    import torch

    from vitgallery.core.pipeline import WorkerProcess

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")
# What every model is built with (timm brings torchvision). Importing them loads C extensions for 2-5 s,
# holding the interpreter lock for 300-450 ms at a time: the window imports them before it opens
# (ui/app.py, docs/performance.md issue 18 point 5).
MODEL_LIBRARIES = ("torch", "timm")
# Imported with them where installed: the CPU runtime "auto" picks (its import holds the lock ~70 ms too).
OPTIONAL_MODEL_LIBRARIES = ("openvino",)


class ModelLoadError(Exception):
    """The model or its weights could not be loaded; the message says what to do on the command line,
    `reason`, where given, what to do in the window (a file chosen there, not passed)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class DeviceError(ModelLoadError):
    """The device asked for is not there (no CUDA GPU, no MPS): another device, not other weights, helps."""


@dataclass(frozen=True)
class Normalisation:
    """How pixels in [0, 1] are shifted and scaled for a model; its name is part of Embedder.signature."""

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


IMAGENET = Normalisation("imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _class_token(tokens: torch.Tensor) -> torch.Tensor:
    return tokens[:, 0]


@dataclass(frozen=True)
class Pooling:
    """How a model's output tokens become one vector per image; its name is part of Embedder.signature."""

    name: str
    pool: Callable[[torch.Tensor], torch.Tensor]  # (B, tokens, D) -> (B, D)


CLASS_TOKEN = Pooling("cls", _class_token)  # measured best for DINOv2 (docs/quality.md)


@dataclass(frozen=True)
class DenseTokens:
    """One forward pass seen in space: what `ModelSpec.dense` returns for a batch."""

    tokens: torch.Tensor  # (B, tokens, D) as `ModelSpec.features` gives them, for the pooling
    patches: torch.Tensor  # (B, rows, cols, D): a ViT's patch tokens, a CNN's last feature map
    attention: torch.Tensor | None  # (B, rows, cols): the CLS token's last-block attention, mean over heads


@dataclass(frozen=True)
class ModelSpec:
    """Everything that makes one model: a new model is one entry in MODELS."""

    name: str
    description: str
    input_size: int
    dim: int
    weights_url: str | None  # None: the model has no downloadable weights (test model)
    build: Callable[[], torch.nn.Module]
    load_weights: Callable[[torch.nn.Module, dict], None]
    features: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]  # (B, tokens, D), the CLS token first
    # (model, batch, with_attention) -> DenseTokens; attention stays None where the model has none
    dense: Callable[[torch.nn.Module, torch.Tensor, bool], DenseTokens]
    has_attention: bool  # a CLS token that attends over patches (ViTs; not ResNet-50)
    normalisation: Normalisation = IMAGENET
    pooling: Pooling = CLASS_TOKEN
    for_users: bool = True  # False: offered to tests, never in the window or the CLI's choices


# -- DINOv2 through timm ---------------------------------------------------------------------------

def _build_dinov2(arch: str) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        import timm

        return timm.create_model(arch, pretrained=False, img_size=224, num_classes=0)

    return build


def _load_dinov2_weights(model: torch.nn.Module, state_dict: dict) -> None:
    from timm.models.vision_transformer import checkpoint_filter_fn

    # Meta's checkpoint layout; the filter drops mask_token and resamples pos_embed to 16x16.
    model.load_state_dict(checkpoint_filter_fn(state_dict, model), strict=True, assign=True)


def _vit_tokens(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, 1 + patches, D) final normalised tokens; token 0 is CLS."""
    return model.forward_features(x)


def _timm_vit_dense(model: torch.nn.Module, x: torch.Tensor, with_attention: bool) -> DenseTokens:
    attention_module = model.blocks[-1].attn
    with _inputs_of(attention_module, with_attention) as seen:
        tokens = model.forward_features(x)
    prefix = model.num_prefix_tokens
    rows, cols = model.patch_embed.grid_size
    patches = tokens[:, prefix:].reshape(len(tokens), rows, cols, -1)
    attention = None
    if with_attention:
        # timm's fused attention never forms the weights: recompute the CLS row from the block's qkv.
        a, inputs = attention_module, seen[0]
        qkv = a.qkv(inputs).reshape(len(inputs), inputs.shape[1], 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4)
        q, k = a.q_norm(qkv[0]), a.k_norm(qkv[1])
        weights = ((q[:, :, :1] * a.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, heads, 1, tokens)
        attention = _patch_attention(weights.mean(dim=1)[:, 0, prefix:], rows, cols)
    return DenseTokens(tokens, patches, attention)


def _patch_attention(cls_row: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """The CLS token's attention over the patches alone, summing to 1, as a (B, rows, cols) grid."""
    cls_row = cls_row.float()
    return (cls_row / cls_row.sum(dim=-1, keepdim=True)).reshape(len(cls_row), rows, cols)


@contextmanager
def _inputs_of(module: torch.nn.Module, wanted: bool) -> Iterator[list[torch.Tensor]]:
    """Collects the first positional input of `module` during the forward passes inside the block."""
    seen: list[torch.Tensor] = []
    handle = module.register_forward_pre_hook(lambda _, args: seen.append(args[0])) if wanted else None
    try:
        yield seen
    finally:
        if handle is not None:
            handle.remove()


# -- torchvision ViT-B/16 and ResNet-50 ------------------------------------------------------------

def _build_torchvision_vit() -> torch.nn.Module:
    from torchvision.models import vit_b_16

    return vit_b_16(weights=None)


def _torchvision_vit_tokens(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    import torch

    # torchvision's forward without the classification head: encoder output, CLS first.
    x = model._process_input(x)
    cls = model.class_token.expand(x.shape[0], -1, -1)
    return model.encoder(torch.cat([cls, x], dim=1))


def _torchvision_vit_dense(model: torch.nn.Module, x: torch.Tensor, with_attention: bool) -> DenseTokens:
    attention_module = model.encoder.layers[-1].self_attention
    with _inputs_of(attention_module, with_attention) as seen:
        tokens = _torchvision_vit_tokens(model, x)
    rows = cols = model.image_size // model.patch_size
    patches = tokens[:, 1:].reshape(len(tokens), rows, cols, -1)
    attention = None
    if with_attention:
        normed = seen[0]
        _, weights = attention_module(normed, normed, normed, need_weights=True, average_attn_weights=True)
        attention = _patch_attention(weights[:, 0, 1:], rows, cols)
    return DenseTokens(tokens, patches, attention)


def _build_resnet50() -> torch.nn.Module:
    import torch
    from torchvision.models import resnet50

    model = resnet50(weights=None)
    model.fc = torch.nn.Identity()
    return model


_CLASSIFIER_PREFIXES = ("fc.", "heads.")  # torchvision's classification heads: the features come before them


def _load_torchvision_weights(model: torch.nn.Module, state_dict: dict) -> None:
    import torch

    has = model.state_dict().keys()
    state_dict = {k: v for k, v in state_dict.items() if k in has or not k.startswith(_CLASSIFIER_PREFIXES)}
    missing, unexpected = model.load_state_dict(state_dict, strict=False, assign=True)
    if [k for k in missing if not k.startswith(_CLASSIFIER_PREFIXES)] or unexpected:
        raise ModelLoadError(f"weights do not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    if missing:  # a checkpoint without the head it never needed
        model.heads = torch.nn.Identity()


def _resnet_tokens(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    # Global-average-pooled features as a single "CLS" token so pooling code stays uniform.
    return model(x).unsqueeze(1)


def _resnet_dense(model: torch.nn.Module, x: torch.Tensor, with_attention: bool) -> DenseTokens:
    """The last feature map (7x7 cells at 224 px) stands for the patches; a CNN has no attention."""
    for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
        x = getattr(model, name)(x)
    pooled = model.avgpool(x).flatten(1)  # what forward gives (its fc is the identity)
    return DenseTokens(pooled.unsqueeze(1), x.permute(0, 2, 3, 1), None)


# -- tiny random ViT for tests ---------------------------------------------------------------------

def _build_tiny() -> torch.nn.Module:
    import torch
    from timm.models.vision_transformer import VisionTransformer

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=0)
    torch.random.set_rng_state(generator_state)
    return model


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("dinov2-s14", "DINOv2 ViT-S/14 (Meta), CLS token", 224, 384,
                  "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth",
                  _build_dinov2("vit_small_patch14_dinov2"), _load_dinov2_weights, _vit_tokens,
                  _timm_vit_dense, True),
        ModelSpec("dinov2-b14", "DINOv2 ViT-B/14 (Meta), CLS token", 224, 768,
                  "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth",
                  _build_dinov2("vit_base_patch14_dinov2"), _load_dinov2_weights, _vit_tokens,
                  _timm_vit_dense, True),
        ModelSpec("vit-b16", "torchvision ViT-B/16, ImageNet-1k, CLS token before the head", 224, 768,
                  "https://download.pytorch.org/models/vit_b_16-c867db91.pth",
                  _build_torchvision_vit, _load_torchvision_weights, _torchvision_vit_tokens,
                  _torchvision_vit_dense, True),
        ModelSpec("resnet50", "torchvision ResNet-50, ImageNet-1k, pooled features (CNN comparison)", 224, 2048,
                  "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
                  _build_resnet50, _load_torchvision_weights, _resnet_tokens, _resnet_dense, False),
        ModelSpec("tiny-test", "tiny random ViT for tests only (meaningless vectors)", 32, 32,
                  None, _build_tiny, lambda model, sd: None, _vit_tokens, _timm_vit_dense, True, for_users=False),
    )
}
DEFAULT_MODEL = "dinov2-s14"


# The models offered to users (the window's settings, the CLI's --model): not the test model.
USER_MODELS = tuple(name for name, spec in MODELS.items() if spec.for_users)


# -- weights ---------------------------------------------------------------------------------------

def weights_cache_path(spec: ModelSpec) -> Path:
    import torch

    assert spec.weights_url is not None
    return Path(torch.hub.get_dir()) / "checkpoints" / spec.weights_url.rsplit("/", 1)[-1]


def download_weights(spec: ModelSpec, *, progress: bool = True) -> Path:
    """The official weights in the torch hub cache, downloaded on first use."""
    import torch

    target = weights_cache_path(spec)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s weights from %s", spec.name, spec.weights_url)
    try:
        torch.hub.download_url_to_file(spec.weights_url, str(target), progress=progress)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc  # a URLError's own, not "<urlopen error ...>"
        raise ModelLoadError(
            f"Could not download the {spec.name} weights ({reason}).\n"
            f"Without network access, download {spec.weights_url} on another machine and pass it with "
            f"--weights FILE (or put it at {target}).",
            reason=unreachable_weights_text(spec, reason),
        ) from exc
    return target


def unreachable_weights_text(spec: ModelSpec, reason: object) -> str:
    return (f"The {spec.name} weights are not on this computer yet and cannot be downloaded now ({reason}).\n"
            f"Download {spec.weights_url} on another machine and choose that file.")


WEIGHTS_REACHABLE_TIMEOUT_S = 5.0


def weights_problem(name: str, weights: Path | str | None = None) -> str | None:
    """Why the model cannot be loaded, found without loading it: an unknown model, a weights file
    that is not there, or official weights neither downloaded yet nor reachable. None: no problem seen."""
    spec = MODELS.get(name)
    if spec is None:
        return f"unknown model {name!r}; choose one of: {', '.join(USER_MODELS)}"
    if weights is not None:
        path = Path(weights).expanduser()
        return None if path.is_file() else f"weights file not found: {path}"
    if spec.weights_url is None or weights_cache_path(spec).exists():
        return None
    request = urllib.request.Request(spec.weights_url, method="HEAD", headers={"User-Agent": "vitgallery"})
    try:
        with urllib.request.urlopen(request, timeout=WEIGHTS_REACHABLE_TIMEOUT_S):
            return None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return unreachable_weights_text(spec, getattr(exc, "reason", None) or exc)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_state_dict(path: Path) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise ModelLoadError(f"weights file not found: {path}") from exc
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        # Its own words suggest loading without weights_only, which would run the file's code: not shown.
        log.info("torch cannot read %s as weights", path, exc_info=True)
        raise ModelLoadError(f"{path} is not a PyTorch weights file (PyTorch cannot read it as one)") from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path} does not hold a state dict")
    return state


# -- device ----------------------------------------------------------------------------------------

def resolve_device(device: str = "auto") -> torch.device:
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}: use {', '.join(DEVICES)}")
    problem = device_problem(device)
    if problem is not None:
        raise DeviceError(f"--device {device} was asked for, but {problem}",
                          reason=f"The device {device} was asked for, but {problem}")
    return torch.device(device)


def device_problem(device: str) -> str | None:
    """Why `device` cannot run the model on this machine, or None where it can."""
    if device not in ("cuda", "mps"):
        return None
    try:
        import torch
    except ImportError as exc:  # the window still opens with a broken install; it says why elsewhere
        return f"PyTorch cannot be imported ({exc})"
    if device == "cuda" and not torch.cuda.is_available():
        return "PyTorch sees no CUDA GPU"
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return "this PyTorch has no MPS support"
    return None


# -- precision -------------------------------------------------------------------------------------

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
# Who runs the model. "auto": OpenVINO on a CPU where it is installed (its int8, calibrated on the
# library's photos, is 2.0x torch bf16's speed within 0.5 mAP on every dup and sem corpus measured; its
# bf16 where the CPU has AMX: docs/performance.md), torch on GPUs and elsewhere.
RUNTIMES = ("auto", "torch", "openvino")
DEFAULT_RUNTIME = "auto"


def cpu_has_native_bf16() -> bool:
    """True where the CPU has bf16 arithmetic (AVX512-BF16 or AMX); elsewhere oneDNN emulates bf16,
    slower than fp32."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # private helpers; without them we cannot tell, so stay with fp32
        return False


def cpu_has_amx() -> bool:
    """True where the CPU has AMX matrix tiles (Intel Xeon since Sapphire Rapids)."""
    import torch

    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a private helper; without it we cannot tell
        return False


def default_precision(device: torch.device) -> str:
    """The precision "auto" picks. On a CPU, bf16 autocast where the hardware has bf16 (1.9x fp32 with
    ViT-S/14, retrieval mAP within 0.3 points of fp32: docs/performance.md), else fp32."""
    import torch

    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "mps":
        return "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def openvino_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("openvino", "nncf"))


def resolve_runtime(runtime: str, device: torch.device, spec: ModelSpec) -> str:
    """"auto": OpenVINO on a CPU where it is installed, else torch. The test model stays on torch
    unless asked: quantising it would cost each test seconds."""
    if runtime not in RUNTIMES:
        raise ModelLoadError(f"unknown runtime {runtime!r}: use {', '.join(RUNTIMES)}")
    if runtime == "auto":
        usable = device.type == "cpu" and spec.weights_url is not None and openvino_available()
        return "openvino" if usable else "torch"
    if runtime == "openvino" and device.type != "cpu":
        raise ModelLoadError("the OpenVINO runtime runs on the CPU here; use --runtime torch on a GPU")
    return runtime


def resolve_precision(precision: str, device: torch.device, runtime: str = "torch") -> str:
    if precision not in PRECISIONS:
        raise ModelLoadError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    if precision == "auto":
        return openvino_default_precision() if runtime == "openvino" else default_precision(device)
    if precision == "int8" and device.type != "cpu":
        raise ModelLoadError("int8 (dynamic quantisation) runs on the CPU only; use bf16 or fp16 on a GPU")
    if precision == "fp16" and device.type == "cpu":
        raise ModelLoadError("fp16 is slow on CPUs; use bf16 or int8 there")
    return precision


# The precisions OpenVINO's "auto" picks, by CPU; a library indexed at one keeps it (auto_kept_precision).
OPENVINO_AUTO_PRECISIONS = ("int8", "bf16")


def openvino_default_precision() -> str:
    """OpenVINO's "auto" precision. int8 costs about half of torch bf16's CPU time (docs/performance.md,
    bench/index_limit.py), its mAP loss against torch bf16 0.05-0.8 (bench/runtime_quality.py), but each
    library's model is calibrated on its photos first (15-20 s). Where the CPU has AMX, bf16 runs as fast
    as int8 (ViT-S/14, one thread: 18.5-18.8 against 19-23 ms a photo) and needs no calibration: a new
    library of 320 photos of 12 MP was indexed in 37-43 s against 53-59 s."""
    return "bf16" if cpu_has_amx() else "int8"


def auto_kept_precision(signature: str | None) -> str | None:
    """The OpenVINO precision "auto" keeps for a library indexed with `signature`: the one it was indexed
    at where "auto" could have picked it on some CPU, so that a library moved to another computer is not
    embedded again; None otherwise (a new library, torch, a precision asked for by name)."""
    if signature is None or signature_runtime(signature) != "openvino":
        return None
    precision = signature_model_and_precision(signature)[1]
    return precision if precision in OPENVINO_AUTO_PRECISIONS else None


def _quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Linear layers with int8 weights and activations quantised per batch at run time (fbgemm/qnnpack)."""
    import torch

    try:
        with warnings.catch_warnings():
            # Deprecated in favour of torchao, whose eager int8 path is slow without torch.compile;
            # this one is still the fast eager CPU path in torch 2.x.
            warnings.filterwarnings("ignore", message=r"(?s).*deprecated")
            from torch.ao.quantization import quantize_dynamic

            # One weight scale per layer: per-channel scales gave closer vectors (mean cosine 0.9945 vs
            # 0.9908) but lower mAP on the dup benchmark (59.06 vs 59.60; fp32 60.66).
            return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    except (ImportError, RuntimeError) as exc:
        raise ModelLoadError(f"int8 quantisation is not available in this PyTorch ({exc})") from exc


# -- the embedder ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PatchFeatures:
    """What the model sees of one photo, patch by patch (Embedder.patch_features)."""

    vector: np.ndarray  # (dim,) unit length: the photo's vector, as embed_pixels gives it
    patches: np.ndarray  # (rows, cols, D) float32 patch tokens (a CNN: its last feature map), not normalised
    attention: np.ndarray | None  # (rows, cols) float32 summing to 1; None where not asked or not supported


class Embedder:
    """A loaded model that turns images into unit vectors.

    `signature` names everything that shapes a vector (model, weights checksum, preprocessing,
    pooling, numeric precision); a library stores it and never mixes vectors of two signatures.

    `runtime`: "torch", "openvino" (CPU: the model converted once, see openvino_runtime), or "auto"
    (resolve_runtime; `runtime_chosen` stays "auto", so a library may keep the runtime it was indexed with).
    `precision`: "fp32"; "bf16"/"fp16" autocast; "auto" (resolve_precision; with OpenVINO, a library's
    own where it was indexed at one "auto" picks: `kept_precision`, `keeping`); "int8": with torch
    dynamic quantisation of the Linear layers (CPU), with OpenVINO post-training quantisation of weights
    and activations, calibrated on a library's photos: such an Embedder embeds nothing until it has its
    library's model (`needs_calibration`; Library.index calibrates one, or reuses the library's, through `calibrated`).
    `calibrated_model`: that model's file (openvino_runtime.quantise_on_photos); its name, the model's
    checksum, is part of the signature.
    `compile_model`: torch.compile the forward pass (pays on CUDA for long runs; batches are padded to
    a power of two so that only a few shapes are ever compiled).
    """

    def __init__(self, spec: ModelSpec, model: torch.nn.Module | TorchModel, weights_sha256: str,
                 device: torch.device, *, precision: str = "fp32", compile_model: bool = False,
                 runtime: str = "torch", weights_file: Path | None = None, calibrated_model: Path | None = None,
                 kept_precision: str | None = None):
        import torch

        self.spec = spec
        self.weights_file = weights_file  # a local weights file it was loaded from; None: downloaded or built in
        self.runtime_chosen = runtime
        self.runtime = resolve_runtime(runtime, device, spec)
        self.precision_chosen = precision
        # "auto" runs OpenVINO at the precision a library was indexed at (auto_kept_precision, `keeping`)
        self.kept_precision = kept_precision if precision == "auto" else None
        self.precision = (self.kept_precision if self.runtime == "openvino" and self.kept_precision
                          else resolve_precision(precision, device, self.runtime))
        self.device = device
        self.weights_sha256 = weights_sha256
        self.compiled = compile_model
        self._mean = torch.tensor(spec.normalisation.mean, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(spec.normalisation.std, device=device).view(1, 3, 1, 1)
        self._torch = model if isinstance(model, TorchModel) else TorchModel.of(model.eval().to(device))
        self._runtime_tag: str | None = None
        self._openvino: Callable[[np.ndarray], np.ndarray] | None = None
        self.calibrated_model = calibrated_model
        self._torch_runtime_model: torch.nn.Module | None = None
        if self.runtime == "openvino":
            try:
                self._start_openvino()
            except ModelLoadError as exc:
                if runtime != "auto" or self.calibrated_model is not None or self.kept_precision:
                    raise  # a library's own OpenVINO model is not swapped for torch's (every photo embedded again)
                # as when quantising fails (calibration.calibrate_for_library): "auto" embeds with torch
                log.warning("%s: embedding with torch instead", exc)
                self.runtime, self.precision = "torch", resolve_precision(precision, device, "torch")
        if self.runtime == "torch":
            base = self._torch.get()
            self._torch_runtime_model = _quantize_int8(base) if self.precision == "int8" else base
        self._features = self._tokens
        if compile_model and self.runtime == "torch":
            self._features = torch.compile(self._tokens, dynamic=False)

    def _start_openvino(self) -> None:
        from vitgallery.core import openvino_runtime
        from vitgallery.core.pipeline import plan_resources

        options = {"threads": plan_resources("cpu").model_threads,
                   "bf16": self.precision != "fp32" and cpu_has_native_bf16()}
        with _openvino_errors(self.spec.name, "converting"):
            tag = openvino_runtime.runtime_tag(self.precision)
            if self.precision != "int8":
                self._openvino = openvino_runtime.load_openvino_model(
                    self.head_recipe, key=self._openvino_key(self.precision),
                    input_size=self.input_size, **options)
            elif self.calibrated_model is not None:
                if not self.calibrated_model.exists():
                    raise ModelLoadError(f"the library's OpenVINO int8 model {self.calibrated_model} is missing: "
                                         "index the folder again (every photo is embedded again)")
                self._openvino = openvino_runtime.compile_model(self.calibrated_model, **options)
            self._runtime_tag = tag

    def _openvino_key(self, precision: str) -> str:
        """The name of this model's conversion at `precision` in openvino_runtime.cache_dir()."""
        from vitgallery.core import openvino_runtime

        return f"{self.spec.name}-{self.weights_sha256[:16]}-{precision}-{openvino_runtime.runtime_tag(precision)}"

    @property
    def head_recipe(self) -> HeadRecipe:
        """This model's vector head, to be made where it is converted (a worker process)."""
        return HeadRecipe(self.spec.name, self.weights_file)

    def quantising_worker(self, cancel: threading.Event | None = None) -> WorkerProcess:
        """A worker process for `calibrate`, started now: it imports NNCF and, for a model never
        converted here, converts it while the caller decodes the calibration photos. `cancel` set while
        it quantises ends it (pipeline.WorkCancelled)."""
        from vitgallery.core import openvino_runtime
        from vitgallery.core.pipeline import WorkerProcess

        fp32 = openvino_runtime.kept_conversion(self._openvino_key("fp32"))
        if not fp32.exists():
            openvino_runtime.log_conversion(fp32)
        return WorkerProcess(functools.partial(openvino_runtime.prepare_quantising, self.head_recipe,
                                               self.input_size, fp32), cancel)

    @property
    def needs_calibration(self) -> bool:
        """OpenVINO int8 without its library's model yet: it embeds nothing until `calibrated` gives it one."""
        return self.runtime == "openvino" and self.precision == "int8" and self.calibrated_model is None

    def calibrate(self, calibration: np.ndarray, folder: Path, worker: WorkerProcess | None = None) -> Embedder:
        """This model quantised to int8 on `calibration` (openvino_runtime.calibration_inputs: a library's
        photos), kept in `folder`, in `worker` (or a worker process started now); 10-20 s for ViT-S/14 on 2 cores."""
        from vitgallery.core import openvino_runtime

        with _openvino_errors(self.spec.name, "quantising"):
            model_file = openvino_runtime.quantise_on_photos(self.head_recipe, folder, self.input_size, calibration,
                                                             fp32_key=self._openvino_key("fp32"), worker=worker)
        return self.calibrated(model_file)

    def calibrated(self, model_file: Path | None) -> Embedder:
        """This model with its int8 quantisation calibrated on a library's photos (`calibrate`), sharing
        the torch model; None: without one (it needs calibration again)."""
        return Embedder(self.spec, self._torch, self.weights_sha256, self.device, precision=self.precision_chosen,
                        compile_model=self.compiled, runtime=self.runtime_chosen, weights_file=self.weights_file,
                        calibrated_model=model_file, kept_precision=self.kept_precision)

    def keeping(self, signature: str | None) -> Embedder:
        """This model at the OpenVINO precision "auto" keeps for a library indexed with `signature`
        (auto_kept_precision), or at this CPU's where it keeps none (a new library); itself where it runs
        so already, or chose its precision or runtime by name."""
        if self.precision_chosen != "auto" or self.runtime != "openvino":
            return self
        kept = auto_kept_precision(signature)
        if (kept or openvino_default_precision()) == self.precision:
            return self
        return Embedder(self.spec, self._torch, self.weights_sha256, self.device, precision="auto",
                        compile_model=self.compiled, runtime=self.runtime_chosen, weights_file=self.weights_file,
                        kept_precision=kept)

    def on_torch(self) -> Embedder:
        """This model run by torch, at the precision asked for (auto: torch's own default)."""
        return Embedder(self.spec, self._torch, self.weights_sha256, self.device, precision=self.precision_chosen,
                        compile_model=self.compiled, runtime="torch", weights_file=self.weights_file)

    @property
    def model(self) -> torch.nn.Module:
        """The torch model that embeds (torch runtime), or the one an OpenVINO runtime was made from,
        read and built on first use (to convert, quantise, explain)."""
        return self._torch_runtime_model if self._torch_runtime_model is not None else self._torch.get()

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.spec.features(self.model, x)

    @property
    def model_id(self) -> str:
        return self.spec.name

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    @property
    def forward_cpu_ms(self) -> float | None:
        """A forward pass's CPU time on one core where it was measured for this CPU (pipeline.forward_cpu_ms)."""
        from vitgallery.core.pipeline import forward_cpu_ms

        return forward_cpu_ms(self.model_id, self.runtime, self.precision, amx=cpu_has_amx())

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def signature(self) -> str:
        runtime = f"|rt:{self._runtime_tag}" if self._runtime_tag else ""  # torch: none, as before runtimes
        calibration = f"{CALIBRATION_MARK}{self.calibrated_model.stem}" if self.calibrated_model else ""
        return f"{self._signature_stem(self.precision)}{runtime}{calibration}"

    @property
    def torch_signature(self) -> str:
        """The signature of this model run by torch (on_torch), known without making that Embedder."""
        return self._signature_stem(resolve_precision(self.precision_chosen, self.device, "torch"))

    def _signature_stem(self, precision: str) -> str:
        return (f"{self.spec.name}|weights:{self.weights_sha256[:16]}"
                f"|pre:trim-squash{self.input_size}-{self.spec.normalisation.name}|pool:{self.spec.pooling.name}"
                f"|prec:{precision}")

    def prepare(self, image: Image.Image) -> np.ndarray:
        """The model input of a photo, as uint8 HxWx3: the pixels decode_for_model gives when indexing."""
        return model_pixels(image, self.input_size)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_pixels(np.stack([self.prepare(im) for im in images]))

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 at the model's input size -> (B, dim) float32, unit length."""
        return self._embed(pixels)

    def embed_views(self, views: np.ndarray) -> np.ndarray:
        """(B, V, H, W, 3): several views of each of B photos -> (B, V, dim)."""
        return self._embed(views.reshape(-1, *views.shape[2:])).reshape(len(views), views.shape[1], self.dim)

    def _embed(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        if self._openvino is not None:
            return self._openvino(pixels)
        if self.needs_calibration:
            raise ModelLoadError("OpenVINO int8 is calibrated on a library's photos: index a library with it, "
                                 "or load the library's model (Library.load_embedder)")
        count = len(pixels)
        if self.compiled and count & (count - 1):
            padded = 1 << (count - 1).bit_length()
            pixels = np.concatenate([pixels, np.zeros((padded - count, *pixels.shape[1:]), pixels.dtype)])
        with torch.inference_mode():
            x = self.normalised_input(pixels)
            with self._autocast():
                tokens = self._features(x)
            return self._vectors(tokens[:count])

    def patch_features(self, pixels: np.ndarray, *, attention: bool = False) -> list[PatchFeatures]:
        """(B, H, W, 3) uint8 at the model's input size -> what the model sees in each, patch by patch:
        its vector (embed_pixels' with the torch runtime), its patch tokens and, when asked and the model has it
        (spec.has_attention), the CLS token's attention over the patches."""
        import torch

        with torch.inference_mode():
            x = self.normalised_input(pixels)
            with self._autocast():
                dense = self.spec.dense(self.model, x, attention)
            vectors = self._vectors(dense.tokens)
            patches = dense.patches.float().cpu().numpy()
            weights = None if dense.attention is None else dense.attention.float().cpu().numpy()
        return [PatchFeatures(vectors[i], patches[i], None if weights is None else weights[i])
                for i in range(len(pixels))]

    def normalised_input(self, pixels: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> the torch model's input on its device: (B, 3, H, W), normalised."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)  # uint8: 4x less to copy
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        return (x - self._mean) / self._std

    def _vectors(self, tokens: torch.Tensor) -> np.ndarray:
        import torch

        vectors = torch.nn.functional.normalize(self.spec.pooling.pool(tokens).float(), dim=-1)
        return vectors.cpu().numpy().astype(np.float32, copy=False)

    def _autocast(self):
        import torch

        if self.precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
            return torch.autocast(self.device.type, dtype=dtype)
        return torch.autocast(self.device.type, enabled=False)


@contextmanager
def _openvino_errors(model: str, doing: str) -> Iterator[None]:
    """A missing extra or a failed conversion as a ModelLoadError that names the way out."""
    from vitgallery.core import openvino_runtime
    from vitgallery.core.pipeline import WorkCancelled

    try:
        yield
    except (ModelLoadError, WorkCancelled):
        raise
    except ImportError as exc:
        raise ModelLoadError(f"{openvino_runtime.OPENVINO_MISSING}; run with --runtime torch") from exc
    except Exception as exc:  # conversion can fail in many ways (an unsupported operation, disk full)
        raise ModelLoadError(f"{doing} {model} for OpenVINO failed: {type(exc).__name__}: {exc}; "
                             "run with --runtime torch") from exc


def vector_head(spec: ModelSpec, model: torch.nn.Module) -> torch.nn.Module:
    """The Embedder's forward pass as one module, uint8 (B, H, W, 3) -> unit vectors, for converters."""
    import torch

    class VectorHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.tensor(spec.normalisation.mean).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(spec.normalisation.std).view(1, 3, 1, 1))

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            x = (pixels.permute(0, 3, 1, 2).float() / 255.0 - self.mean) / self.std
            return torch.nn.functional.normalize(spec.features(self.model, x)[:, 0], dim=-1)

    return VectorHead().eval()


@dataclass(frozen=True)
class HeadRecipe:
    """A model's vector head (vector_head) made anew from its name and weights, where it is called: a
    worker process converts it for OpenVINO, since tracing it holds the interpreter (openvino_runtime)."""

    model: str
    weights_file: Path | None  # None: the downloaded weights (or none: the test model)

    def __call__(self) -> torch.nn.Module:
        spec = MODELS[self.model]
        if self.weights_file is None and spec.weights_url is None:
            module = spec.build()
        else:
            module = _model_from_file(spec, self.weights_file or download_weights(spec, progress=False))
        return vector_head(spec, module.eval())


def load_embedder(name: str = DEFAULT_MODEL, *, weights: Path | str | None = None, device: str = "auto",
                  progress: bool = True, precision: str = "auto", compile_model: bool = False,
                  runtime: str = DEFAULT_RUNTIME, calibrated_model: Path | None = None,
                  trusted_signature: str | None = None) -> Embedder:
    """Build a registered model with official (downloaded) or local weights; `calibrated_model`: a
    library's OpenVINO int8 model (Embedder.calibrate). `trusted_signature`: a library's signature;
    weights with the checksum it names were read before, so an OpenVINO runtime reads the torch model
    only when it needs it (TorchModel), and "auto" runs it at the library's precision (Embedder.keeping).
    Other weights are read now: a file that does not hold them fails here, before a library is told its
    model changed."""
    spec = MODELS.get(name)
    if spec is None:
        raise ModelLoadError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    torch_device = resolve_device(device)
    weights_file = Path(weights).expanduser().absolute() if weights is not None else None
    if spec.weights_url is None:
        model: torch.nn.Module | TorchModel = spec.build()
        weights_sha, weights_file = "random-seed-0", None
    else:
        path = weights_file or download_weights(spec, progress=progress)
        weights_sha = weights_checksum(path)
        model = TorchModel(lambda: _model_from_file(spec, path).eval().to(torch_device))
        trusted = trusted_signature is not None and signature_has_weights(trusted_signature, name, weights_sha)
        if not (trusted and resolve_runtime(runtime, torch_device, spec) == "openvino"):
            model.get()
        log.info("%s weights %s (sha256 %s)", name, path, weights_sha[:16])
    return Embedder(spec, model, weights_sha, torch_device, precision=precision, compile_model=compile_model,
                    runtime=runtime, weights_file=weights_file, calibrated_model=calibrated_model,
                    kept_precision=auto_kept_precision(trusted_signature))


def weights_checksum(path: Path) -> str:
    """The sha256 of a weights file, which an Embedder.signature names (its first 16 digits)."""
    try:
        return file_sha256(path)
    except FileNotFoundError as exc:
        raise ModelLoadError(f"weights file not found: {path}") from exc
    except OSError as exc:
        raise ModelLoadError(f"cannot read the weights file {path} ({exc.strerror or exc})") from exc


def signature_has_weights(signature: str, name: str, weights_sha: str) -> bool:
    """Whether an Embedder.signature is of model `name` with the weights of checksum `weights_sha`."""
    return signature.startswith(f"{name}|weights:{weights_sha[:16]}|")


class TorchModel:
    """A model's torch module, read and built on first use. An OpenVINO runtime embeds without it (it
    is needed to convert or quantise the model, to explain a match, to fall back to torch), and reading
    the checkpoint and building the model take ~0.2 s of the interpreter that a starting window or a
    search would wait for."""

    def __init__(self, make: Callable[[], torch.nn.Module]) -> None:
        self._make = make
        self._module: torch.nn.Module | None = None
        self._lock = threading.Lock()  # the window's jobs share an Embedder: one read

    @classmethod
    def of(cls, module: torch.nn.Module) -> TorchModel:
        made = cls(lambda: module)
        made._module = module
        return made

    def get(self) -> torch.nn.Module:
        with self._lock:
            if self._module is None:
                self._module = self._make()
            return self._module


WEIGHTS_DETAIL_CHARS = 160  # of torch's list of the keys that did not fit: enough to recognise the model


def _model_from_file(spec: ModelSpec, path: Path) -> torch.nn.Module:
    try:
        return _built_with_weights(spec, _read_state_dict(path))
    except (RuntimeError, KeyError, ValueError) as exc:  # torch's and timm's words for a foreign layout
        detail = " ".join(str(exc).split())
        if len(detail) > WEIGHTS_DETAIL_CHARS:
            detail = detail[:WEIGHTS_DETAIL_CHARS].rsplit(" ", 1)[0] + " …"
        raise ModelLoadError(f"{path} does not hold {spec.name} weights: the weights of another model? ({detail})") \
            from exc


def _built_with_weights(spec: ModelSpec, state_dict: dict) -> torch.nn.Module:
    """The model with the checkpoint's weights, built on the meta device: initialising a ViT's weights
    that the checkpoint then replaces costs 0.4-2 s of CPU, and holds the interpreter while the window
    starts. The loaders assign the checkpoint's tensors; any left without a value fails here."""
    import torch

    with torch.device("meta"):
        model = spec.build()
    spec.load_weights(model, state_dict)
    unset = [name for name, tensor in itertools.chain(model.named_parameters(), model.named_buffers())
             if tensor.is_meta]
    if unset:
        raise ModelLoadError(f"weights do not fit the model: no value for {unset[:3]}")
    return model.float()  # as loading into a built model casts: a half-precision checkpoint runs in fp32


def signature_model_and_precision(signature: str) -> tuple[str, str]:
    """The model name and precision an Embedder.signature names (what a library was indexed with)."""
    parts = signature.split("|")
    precision = next((p.removeprefix("prec:") for p in parts if p.startswith("prec:")), "auto")
    return parts[0], precision


def signature_runtime(signature: str) -> str:
    """The runtime an Embedder.signature names: torch unless it says otherwise."""
    return "openvino" if "|rt:openvino" in signature else "torch"


def signature_change(before: str, after: str) -> str:
    """What differs between two signatures, in words: 'the model changed to dinov2-b14', 'the precision
    changed from int8 to fp32'."""
    (model, precision), (new_model, new_precision) = (signature_model_and_precision(s) for s in (before, after))
    if model != new_model:
        return f"the model changed to {new_model}"
    if precision != new_precision:
        return f"the precision changed from {precision} to {new_precision}"
    if signature_runtime(before) != signature_runtime(after):
        return f"the runtime changed to {signature_runtime(after)}"
    if before.split("|")[1:2] != after.split("|")[1:2]:  # the part after the model names its weights
        return f"the {new_model} weights changed"
    return f"the {new_model} settings changed"


def choice_change(signature: str, indexed_weights: Path | None, name: str, weights: Path | None,
                  device: str = "auto", precision: str = "auto") -> str | None:
    """What indexing a library indexed with `signature` (from the file `indexed_weights`; None: the official
    download) with this model choice would change, in signature_change's words; None where the run keeps
    every photo's vector. Told before any model loads, so weights are told apart by their file, not by
    their checksum as the run does: a copy of the library's file is said to be other weights."""
    indexed_name, indexed_precision = signature_model_and_precision(signature)
    if name != indexed_name:
        return f"the model changed to {name}"
    chosen = weights or indexed_weights  # with no file chosen, the run takes the library's own (the CLI's rule)
    if (chosen is None) != (indexed_weights is None) or (
            chosen is not None and indexed_weights is not None and not _same_file(chosen, indexed_weights)):
        return f"the {name} weights changed"
    try:
        torch_device = resolve_device(device)
        runtime = resolve_runtime(DEFAULT_RUNTIME, torch_device, MODELS[name])
        resolved = resolve_precision(precision, torch_device, runtime)
        on_torch = resolve_precision(precision, torch_device, "torch")
    except (ModelLoadError, KeyError):
        return None  # it cannot load so: loading says why, and embeds nothing
    if runtime != "torch" and signature_runtime(signature) == "torch" and on_torch == indexed_precision:
        return None  # "auto" keeps the runtime the library was indexed with (calibration.library_embedder)
    if precision == "auto" and runtime == "openvino":
        resolved = auto_kept_precision(signature) or resolved  # and its OpenVINO precision (Embedder.keeping)
    if resolved != indexed_precision:
        return f"the precision changed from {indexed_precision} to {resolved}"
    if runtime != signature_runtime(signature):
        return f"the runtime changed to {runtime}"
    return None


def _same_file(first: Path, second: Path) -> bool:
    """Whether two names lead to one file ("~/w.pth" and its full path, a link to it)."""
    first, second = first.expanduser(), second.expanduser()
    try:
        return first.samefile(second)
    except OSError:  # one is not there: by name
        return first.absolute() == second.absolute()


# Ends a signature whose int8 model was calibrated on a library's photos: the model file's checksum.
CALIBRATION_MARK = "|cal:"


def signature_calibration(signature: str) -> str | None:
    """The fingerprint of the calibrated model an Embedder.signature names (the stem of its file), if any."""
    _, mark, fingerprint = signature.partition(CALIBRATION_MARK)
    return fingerprint if mark else None
