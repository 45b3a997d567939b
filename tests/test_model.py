"""IBFP modules: shapes at 288 input, correlation, template cropping, state dicts, weights files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ibfp_cli.config import MOBILE_MODEL, PAPER_MODEL, TrackerConfig
from ibfp_cli.errors import WeightsError
from ibfp_cli.model.backbone import MobileNetV2, ResNet18, load_imagenet
from ibfp_cli.model.cscs import CSCS
from ibfp_cli.model.head import Head
from ibfp_cli.model.ibfp import IBFP
from ibfp_cli.model.ibu import IBU
from ibfp_cli.model.labels import gaussian_labels
from ibfp_cli.model.online import OnlineBranch, filter_response, fit_filter, hinge_residual
from ibfp_cli.model.xcorr import crop_template, dw_xcorr, trim_kernel
from ibfp_cli.tracking.weights import load_model, read_checkpoint, resolve_weights, save_weights

MBV2_FILE = Path(__file__).resolve().parents[2] / "shared" / "weights" / "mobilenetv2-imagenet.pt"
S = 288


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("backbone, channels", [(ResNet18, (128, 256, 512)), (MobileNetV2, (32, 96, 320))])
def test_backbone_taps_at_strides_8_16_32(backbone, channels):
    net = backbone().eval()
    with torch.inference_mode():
        taps = net(torch.rand(1, 3, S, S))
    assert [tuple(t.shape) for t in taps] == [(1, c, S // s, S // s) for c, s in zip(channels, (8, 16, 32))]


def test_modules_shapes_at_288():
    c8, c16, c32 = PAPER_MODEL.channels
    T0, U0, F1 = torch.rand(2, c32, 5, 5), torch.rand(2, c32, 9, 9), torch.rand(2, c16, 18, 18)
    assert CSCS(c32, c32, 0.5)(T0, U0).shape == T0.shape
    assert IBU(c32, c16, 0)(T0, U0, F1).shape == (2, c16, 18, 18)
    assert IBU(c16, c8, 0)(torch.rand(2, c16, 9, 9), F1, torch.rand(2, c8, 36, 36)).shape == (2, c8, 36, 36)
    centre, ltrb = Head(c8, 256, 5, 8, 0)(torch.rand(2, c8, 36, 36))
    assert centre.shape == (2, 1, 36, 36) and ltrb.shape == (2, 4, 36, 36) and bool((ltrb >= 0).all())
    online = OnlineBranch(c16, 256, 64, 4, 5, 0)
    assert online(F1).shape == (2, 64, 18, 18)


def test_head_has_five_convs_per_branch():
    head = Head(128, 256, 5, 8, 0)
    for branch in (head.centre, head.box):
        assert sum(isinstance(m, torch.nn.Conv2d) for m in branch.modules()) == 5


@pytest.mark.parametrize("config", [PAPER_MODEL, MOBILE_MODEL], ids=["paper", "mobile"])
def test_ibfp_forward_shapes(config):
    model = IBFP(config).eval()
    with torch.inference_mode():
        z = model.project(model.backbone_features(torch.rand(2, 3, S, S) * 255))
        template = model.template(z, torch.tensor([[115.0, 115.0, 58.0, 58.0], [100.0, 120.0, 90.0, 40.0]]))
        pred = model(template, z)
    assert pred.centre.shape == (2, 1, 36, 36)
    assert pred.ltrb.shape == (2, 4, 36, 36)
    assert pred.online.shape == (2, 1, 18, 18)
    assert template.T8.shape[-1] == config.template_max_cells[0]


def test_dw_xcorr_equals_naive_loop():
    x, k = torch.rand(2, 3, 9, 11), torch.rand(2, 3, 3, 3)
    out = dw_xcorr(x, k)
    padded = F.pad(x, (1, 1, 1, 1))
    naive = torch.zeros_like(out)
    for b in range(2):
        for c in range(3):
            for i in range(9):
                for j in range(11):
                    naive[b, c, i, j] = (padded[b, c, i : i + 3, j : j + 3] * k[b, c]).sum()
    torch.testing.assert_close(out, naive)


def test_cropped_template_is_target_sized_and_padding_keeps_correlation():
    feature = torch.rand(1, 4, 36, 36)
    box = torch.tensor([[100.0, 120.0, 58.0, 25.0]])  # 7.25 x 3.1 cells at stride 8 -> 7 x 3
    kernel = crop_template(feature, box, 8, 3, 17)
    rows = kernel.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    cols = kernel.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    assert (len(rows), len(cols)) == (3, 7)
    # centred on the target's cell: (x + w/2) / 8 = 16.1 -> column 16, (y + h/2) / 8 = 16.6 -> row 16
    torch.testing.assert_close(kernel[0, :, 8, 8], feature[0, :, 16, 16])
    search = torch.rand(1, 4, 36, 36)
    torch.testing.assert_close(dw_xcorr(search, kernel), dw_xcorr(search, trim_kernel(kernel)))
    assert trim_kernel(kernel).shape[-1] == 7


def test_resnet18_loads_torchvision_key_names_strictly(tmp_path):
    reference = ResNet18()
    state = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in reference.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.rand(1000, 512), torch.rand(1000)  # torchvision's classifier
    assert "layer1.0.conv1.weight" in state and "conv1.weight" in state
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(state, path)
    net = ResNet18()
    load_imagenet(net, path)
    torch.testing.assert_close(net.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    del state["layer4.1.bn2.running_var"]
    torch.save(state, path)
    with pytest.raises(WeightsError, match="missing"):
        load_imagenet(ResNet18(), path)


@pytest.mark.skipif(not MBV2_FILE.is_file(), reason="shared MobileNetV2 ImageNet weights absent")
def test_mobilenetv2_loads_shared_imagenet_file():
    net = MobileNetV2()
    load_imagenet(net, MBV2_FILE)
    state = torch.load(MBV2_FILE, weights_only=True)
    torch.testing.assert_close(net.features[17].conv[6].weight, state["features.17.conv.6.weight"])
    used = {k for k in state if not k.startswith("features.18.")}
    assert used == set(net.state_dict())


def test_fit_filter_lowers_hinge_loss():
    X = torch.randn(6, 8, 18, 18)
    Y = gaussian_labels(torch.tensor([[100.0, 110.0, 58.0, 58.0]] * 6), 18, 16, 0.25)
    f = torch.randn(1, 8, 5, 5) * 0.01
    w = torch.full((6,), 1 / 6)

    def loss(f_):
        return float((w.view(-1, 1, 1, 1) * hinge_residual(F.conv2d(X, f_, padding=2), Y, 0.05) ** 2).sum())

    fitted = fit_filter(f, X, Y, w, steps=5, regularization=0.01, tau=0.05)
    assert loss(fitted) < 0.5 * loss(f)


def test_initial_filter_peaks_at_one_on_its_template():
    online = OnlineBranch(16, 16, 8, 4, 5, 0)
    z = torch.rand(1, 8, 18, 18)
    box = torch.tensor([[136.0, 136.0, 16.0, 16.0]])  # centre cell (9, 9) at stride 16
    f = online.initial_filter(z, box, 16)
    response = filter_response(z, f)
    assert response[0, 0, 9, 9] == pytest.approx(1.0, abs=1e-4)


def test_weights_round_trip_and_clear_errors(tmp_path):
    model = IBFP(MOBILE_MODEL)
    path = tmp_path / "ibfp-9.9.9.pt"
    save_weights(path, model, {"data": "none"})
    data = read_checkpoint(path)
    assert all(v.dtype == torch.float16 for v in data["state_dict"].values() if v.is_floating_point())
    loaded, meta = load_model(path)
    assert meta == {"data": "none"} and loaded.config == MOBILE_MODEL
    data["version"] = 99
    torch.save(data, tmp_path / "future.pt")
    with pytest.raises(WeightsError, match="version 99"):
        load_model(tmp_path / "future.pt")
    torch.save({"arch": "other"}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not an IBFP weights file"):
        load_model(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(WeightsError, match="not found"):
        resolve_weights(tmp_path / "missing.pt")


def test_weights_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "env.pt"
    save_weights(path, IBFP(MOBILE_MODEL), {})
    monkeypatch.setenv("IBFP_WEIGHTS", str(path))
    assert resolve_weights() == path


def test_tracker_config_defaults_follow_the_paper():
    cfg = TrackerConfig()
    assert (cfg.offline_weight, cfg.online_weight, cfg.online_interval) == (0.3, 0.7, 10)
