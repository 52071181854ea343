from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch

from tests.photos import make_photo
from vitgallery.core import models
from vitgallery.core.calibration import library_embedder
from vitgallery.core.models import (
    MODELS,
    DeviceError,
    ModelLoadError,
    choice_change,
    device_problem,
    load_embedder,
    resolve_device,
    signature_change,
)


def test_tiny_model_gives_unit_float32_vectors_deterministically():
    a = load_embedder("tiny-test").embed_images([make_photo(1), make_photo(2)])
    b = load_embedder("tiny-test").embed_images([make_photo(1), make_photo(2)])
    assert a.dtype == np.float32 and a.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_unknown_model_and_device():
    with pytest.raises(ModelLoadError, match="unknown model"):
        load_embedder("vit-huge-9000")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="no CUDA"):
            resolve_device("cuda")
    with pytest.raises(ModelLoadError, match="unknown device"):
        resolve_device("tpu")


def test_offline_download_says_how_to_pass_a_file(monkeypatch):
    def no_network(url, dst, progress=True):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(ModelLoadError) as err:
        load_embedder("dinov2-s14", progress=False)
    message = str(err.value)
    assert "--weights FILE" in message and "dinov2_vits14_pretrain.pth" in message


def test_download_goes_to_the_torch_hub_cache(monkeypatch, tmp_path):
    calls = []

    def fake_download(url, dst, progress=True):
        calls.append((url, dst, progress))
        torch.save(MODELS["resnet50"].build().state_dict(), dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    emb = load_embedder("resnet50", progress=True, runtime="torch")  # weights, not runtimes, are tested here
    assert calls[0][0] == MODELS["resnet50"].weights_url and calls[0][2] is True
    assert calls[0][1].startswith(torch.hub.get_dir())
    load_embedder("resnet50", runtime="torch")
    assert len(calls) == 1, "a cached file is not downloaded again"
    assert emb.embed_images([make_photo(3)]).shape == (1, 2048)


def test_broken_or_foreign_weights_file(tmp_path):
    garbage = tmp_path / "weights.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="is not a PyTorch weights file") as refused:
        load_embedder("dinov2-s14", weights=garbage)
    assert "weights_only" not in str(refused.value), "never the advice to load it so that its code runs"
    with pytest.raises(ModelLoadError, match="not found"):
        load_embedder("dinov2-s14", weights=tmp_path / "missing.pth")
    foreign = tmp_path / "foreign.pth"
    torch.save({"layer.weight": torch.zeros(3)}, foreign)
    with pytest.raises(ModelLoadError):
        load_embedder("vit-b16", weights=foreign)
    with pytest.raises(ModelLoadError, match="does not hold dinov2-s14 weights") as refused:
        load_embedder("dinov2-s14", weights=foreign)
    assert len(str(refused.value)) < len(str(foreign)) + 250, "one line, not torch's list of every key"


def test_dinov2_loads_meta_layout_checkpoint(tmp_path):
    """A checkpoint in the layout of Meta's dinov2_vits14_pretrain.pth (518 px grid, mask_token)."""
    model = MODELS["dinov2-s14"].build()
    state = {k: v for k, v in model.state_dict().items()}
    state["mask_token"] = torch.zeros(1, 384)
    state["pos_embed"] = torch.randn(1, 1 + 37 * 37, 384)
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(state, path)
    emb = load_embedder("dinov2-s14", weights=path, runtime="torch")
    assert emb.signature.startswith("dinov2-s14|weights:" + models.file_sha256(path)[:16])
    vec = emb.embed_images([make_photo(4, (500, 300))])
    assert vec.shape == (1, 384)


def test_a_half_precision_checkpoint_runs_in_full_precision(tmp_path):
    """The model is built without weights and given the file's tensors: they are cast as loading
    into a built model casts them."""
    model = MODELS["dinov2-s14"].build()
    path = tmp_path / "dinov2_half.pth"
    torch.save({k: v.half() for k, v in model.state_dict().items()}, path)
    emb = load_embedder("dinov2-s14", weights=path, runtime="torch", precision="fp32")
    assert {p.dtype for p in emb.model.parameters()} == {torch.float32}
    assert not any(p.is_meta for p in emb.model.parameters())
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(emb.model.forward_features(x), model.half().float().forward_features(x))


def test_a_torchvision_checkpoint_without_its_classifier_loads(tmp_path):
    model = MODELS["vit-b16"].build()
    path = tmp_path / "vit_no_head.pth"
    torch.save({k: v for k, v in model.state_dict().items() if not k.startswith("heads.")}, path)
    emb = load_embedder("vit-b16", weights=path, runtime="torch", precision="fp32")
    assert not any(p.is_meta for p in emb.model.parameters())
    assert emb.embed_images([make_photo(5)]).shape == (1, 768)


def test_registry_urls_are_the_official_ones():
    from torchvision.models import ResNet50_Weights, ViT_B_16_Weights

    assert MODELS["vit-b16"].weights_url == ViT_B_16_Weights.IMAGENET1K_V1.url
    assert MODELS["resnet50"].weights_url == ResNet50_Weights.IMAGENET1K_V2.url
    assert MODELS["dinov2-s14"].weights_url.endswith("dinov2_vits14_pretrain.pth")
    assert MODELS["dinov2-b14"].weights_url.endswith("dinov2_vitb14_pretrain.pth")


def test_torchvision_vit_uses_cls_token_before_head(tmp_path):
    model = MODELS["vit-b16"].build()
    path = tmp_path / "vit.pth"
    torch.save(model.state_dict(), path)
    emb = load_embedder("vit-b16", weights=path, runtime="torch")
    x = torch.randn(1, 3, 224, 224)
    tokens = MODELS["vit-b16"].features(emb.model, x)
    # torchvision's own forward applies the head to exactly this token
    torch.testing.assert_close(emb.model.heads(tokens[:, 0]), emb.model(x))


@pytest.mark.skipif(not models.openvino_available(), reason="needs the openvino extra")
def test_weights_a_library_was_indexed_with_are_read_only_when_needed(tmp_path):
    """With OpenVINO the torch model serves only to convert, quantise or explain: weights whose checksum
    the library's signature names are not read at load (a starting window waits for that read);
    other weights are, so a file that does not hold them fails before a library is told its model changed."""
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(MODELS["dinov2-s14"].build().state_dict(), path)
    untrusted = load_embedder("dinov2-s14", weights=path, runtime="openvino", precision="int8")
    assert untrusted._torch._module is not None
    trusted = load_embedder("dinov2-s14", weights=path, runtime="openvino", precision="int8",
                            trusted_signature=untrusted.signature + "|cal:0123456789abcdef")
    assert trusted.signature == untrusted.signature and trusted._torch._module is None
    library_embedder(trusted, tmp_path, trusted.signature + "|cal:0123456789abcdef")  # as an index run starts
    assert trusted._torch._module is None
    assert trusted.calibrated(None)._torch is trusted._torch, "an Embedder made from it shares the one read"
    assert trusted.torch_signature == trusted.on_torch().signature
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(trusted.model.forward_features(x), untrusted.model.forward_features(x))

    path.write_bytes(b"not a checkpoint")  # another file now: its checksum is not the library's
    with pytest.raises(ModelLoadError, match="is not a PyTorch weights file"):
        load_embedder("dinov2-s14", weights=path, runtime="openvino", precision="int8",
                      trusted_signature=untrusted.signature)


def test_a_changed_signature_is_said_as_what_changed():
    """Another precision was announced as "model changed to dinov2-s14", the model it already was."""
    fp32, int8 = load_embedder("tiny-test", precision="fp32").signature, load_embedder("tiny-test", precision="int8")
    assert signature_change(fp32, int8.signature) == "the precision changed from fp32 to int8"
    assert signature_change(fp32, fp32.replace("tiny-test", "dinov2-b14", 1)) == "the model changed to dinov2-b14"
    assert signature_change(fp32, fp32 + "|rt:openvino") == "the runtime changed to openvino"
    weights = fp32.split("|")[1]
    assert signature_change(fp32, fp32.replace(weights, "other")) == "the tiny-test weights changed"
    assert signature_change(fp32, fp32 + "|pool:mean") == "the tiny-test settings changed"


def test_a_device_this_machine_lacks_is_named_with_its_reason(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_problem("cuda") == "PyTorch sees no CUDA GPU"
    assert device_problem("cpu") is None and device_problem("auto") is None
    with pytest.raises(DeviceError, match="--device cuda was asked for, but PyTorch sees no CUDA GPU"):
        resolve_device("cuda")


def test_a_model_choice_is_told_apart_from_the_librarys_before_it_loads(tmp_path):
    """Settings warned that every photo is embedded again even for the model the library already had."""
    weights = tmp_path / "w.pth"
    fp32 = load_embedder("tiny-test", precision="fp32").signature
    assert choice_change(fp32, None, "tiny-test", None, "cpu", "fp32") is None
    assert choice_change(fp32, weights, "tiny-test", None, "cpu", "fp32") is None, "no file chosen: the library's"
    assert choice_change(fp32, weights, "tiny-test", tmp_path / "." / "w.pth", "cpu", "fp32") is None
    weights.write_bytes(b"weights")
    (tmp_path / "link.pth").symlink_to(weights)  # the same file by another name: QA was warned for it
    assert choice_change(fp32, weights, "tiny-test", tmp_path / "link.pth", "cpu", "fp32") is None
    assert choice_change(fp32, weights, "tiny-test", tmp_path / "v.pth", "cpu", "fp32") == "the tiny-test weights changed"
    assert choice_change(fp32, None, "tiny-test", weights, "cpu", "fp32") == "the tiny-test weights changed"
    assert choice_change(fp32, None, "dinov2-s14", None, "cpu", "fp32") == "the model changed to dinov2-s14"
    assert choice_change(fp32, None, "tiny-test", None, "cpu", "int8") == "the precision changed from fp32 to int8"
    on_this_cpu = load_embedder("tiny-test", device="cpu").precision  # what "auto" picks here
    assert (choice_change(fp32, None, "tiny-test", None, "cpu", "auto") is None) == (on_this_cpu == "fp32")
    assert choice_change(fp32, None, "tiny-test", None, "cpu", "fp16") is None, "it cannot load: nothing changes"


def test_a_model_choice_keeps_the_runtime_a_library_was_indexed_with(monkeypatch):
    monkeypatch.setattr(models, "openvino_available", lambda: True)  # "auto" would pick OpenVINO on a CPU
    on_torch = "dinov2-s14|weights:0123456789abcdef|pre:trim-squash224-imagenet|pool:cls|prec:fp32"
    assert choice_change(on_torch, None, "dinov2-s14", None, "cpu", "fp32") is None
    calibrated = on_torch.replace("prec:fp32", "prec:int8") + "|rt:openvino-2025|cal:0123456789abcdef"
    assert choice_change(calibrated, None, "dinov2-s14", None, "cpu", "auto") is None
    assert choice_change(calibrated, None, "dinov2-s14", None, "cpu", "fp32") == "the precision changed from int8 to fp32"
