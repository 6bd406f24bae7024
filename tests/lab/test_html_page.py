"""The stepper as one web page (Stepper.to_html, zoo.step --html): what it says is the layer's truth, it is
self-contained, and a real browser (headless Chromium) renders it: every step listed, clicking opens each
step, the screenshot is not blank."""
import re
import shutil
import subprocess

import numpy as np
import pytest

import zoo
from minitorch_cnn import nn
from minitorch_cnn.lab import Stepper, sample_image
from minitorch_cnn.lab.page_facts import feature_map_png, receptive_fields, size_formula
from minitorch_cnn.random import manual_seed

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def lenet_page(tmp_path_factory):
    manual_seed(0)
    x, _ = sample_image("photo")
    st = Stepper(zoo.get_model("lenet5", in_channels=3, num_classes=10).eval(), x)
    st.backward(3)
    path = tmp_path_factory.mktemp("page") / "lenet5.html"
    page = st.to_html(path, repeat=3, gradcheck=True, samples=4)
    return st, page, path


def test_page_has_every_step_and_the_real_numbers(lenet_page):
    st, page, path = lenet_page
    assert path.read_text(encoding="utf-8") == page
    for s in st:
        assert f'id="step-{s.index}"' in page and f'data-index="{s.index}"' in page and s.name in page
    # LeNet-5's conv1 on a 32x32 image: 5x5, no padding -> 28; 6 * 28*28 outputs of 3*5*5 MACs each
    assert "floor((32 + 2*0 - 5)/1) + 1 = 28" in page
    assert "352,800" in page and "456 (456)" in page
    assert page.count("medians of 3 runs") == len(st)
    assert page.count("gradcheck passed") == len(st) and "gradcheck 12/12 passed" in page
    assert page.count("gradient at the output") == len(st)
    assert "path im2col: W (6, 75)" in page                 # the conv view of its ConvPlan


def test_page_is_self_contained(lenet_page):
    _, page, _ = lenet_page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must fetch nothing"
    assert "<link" not in page and "@import" not in page
    assert page.count("data:image/png;base64,") >= 2 * 12 + 1 + 4   # maps, gradients, input, attribution


def test_page_shows_why_it_predicted(lenet_page):
    st, page, _ = lenet_page
    from minitorch_cnn.lab import attribution
    label = attribution.predicted_class(st.model, st.x)
    assert f"Why did it predict class {label}?" in page
    for name in ("saliency", "Grad-CAM at features.pool2", "guided backprop", "occlusion (8x8 patches)"):
        assert f'alt="{name}"' in page


def test_one_timing_run_is_not_called_a_median():
    st = Stepper(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), np.zeros((1, 1, 8, 8), np.float32))
    page = st.to_html(repeat=1, attribution=False)
    assert page.count("(one run after a warm-up;") == len(st) and "medians of" not in page


def test_size_formula_and_receptive_field_follow_the_layers():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3, padding=2, dilation=2))
    st = Stepper(model, np.zeros((1, 3, 32, 32), np.float32))
    assert size_formula(st[0]).endswith("floor((32 + 2*1 - 3)/2) + 1 = 16")
    assert size_formula(st[2]).endswith("floor((8 + 2*2 - (2*(3-1)+1))/1) + 1 = 8")
    rf = receptive_fields(st.steps, (32, 32))
    # 3 pixels; the pool adds (2-1)*2 = 2 (outputs 2 apart), jump 4; the dilated conv adds (3-1)*2*4 = 16
    assert [rf[s.name] for s in st] == [(3, 2), (5, 4), (21, 4)]


def test_receptive_field_takes_the_widest_branch():
    """ResNet's add sees the wider field of its two inputs; global pooling sees the whole image."""
    st = Stepper(zoo.get_model("resnet18", in_channels=3, num_classes=10).eval(),
                 np.zeros((1, 3, 32, 32), np.float32))
    rf = receptive_fields(st.steps, (32, 32))
    # the add's inputs: bn2 (two 3x3 convs past the block's input) and the block's input itself
    assert rf["layer1.0.shortcut"] == rf["relu"] == (3, 1)
    assert rf["layer1.0.add"] == rf["layer1.0.bn2"] == (3 + 2 + 2, 1)
    assert rf["fc"][0] == 32


def test_feature_map_png_is_an_image_of_the_maps():
    from io import BytesIO

    from PIL import Image
    a = np.zeros((1, 4, 8, 8), np.float32)
    a[0, 1, 2, 3] = 1.0
    img = np.asarray(Image.open(BytesIO(feature_map_png(a, cell=8))))
    assert img.shape == (2 * 10, 2 * 10)          # a 2x2 grid of 8x8 maps, 2-pixel gaps
    assert img[2, 10 + 3] == 255 and img[0, 0] == 0 and img[2, 3] == 0


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium); "
                    "the page's browser test cannot run")
    return exe


def run_chromium(tmp_path, *args):
    profile = tmp_path / "profile"
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_chromium_renders_every_step_and_clicking_opens_each(lenet_page, tmp_path):
    st, _, path = lenet_page
    dom = run_chromium(tmp_path, "--dump-dom", f"{path.as_uri()}#selftest").stdout
    assert len(re.findall(r'<li class="step', dom)) == len(st)
    # the page's own self-test clicked every <li> in the browser and checked that its section, only, opened
    assert f"clicked {len(st)} steps, {len(st)} opened</pre>" in dom, dom[-500:]
    dom = run_chromium(tmp_path, "--dump-dom", f"{path.as_uri()}#step-5").stdout
    assert re.search(r'<section class="detail" id="step-5">', dom)          # opened: no hidden attribute
    assert len(re.findall(r'<section class="detail" id="step-\d+" hidden', dom)) == len(st) - 1


def test_chromium_screenshot_is_not_blank(lenet_page, tmp_path):
    from PIL import Image
    _, _, path = lenet_page
    shot = tmp_path / "shot.png"
    run_chromium(tmp_path, "--window-size=1000,700", f"--screenshot={shot}", f"{path.as_uri()}#step-0")
    assert shot.is_file(), "chromium wrote no screenshot"
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert img.shape == (700, 1000)
    assert img.std() > 10 and len(np.unique(img)) > 50      # text, maps and a list; not one colour


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_every_zoo_model_renders_in_chromium(name, tmp_path):
    """All seven models' pages (times the medians of 3 runs per step, as zoo.step --html gives; no attribution
    maps: seconds each) load in Chromium, list every step and open each one on a click."""
    exe = chromium()
    manual_seed(0)
    x, _ = sample_image("photo")
    st = Stepper(zoo.get_model(name, in_channels=3, num_classes=10).eval(), x)
    path = tmp_path / f"{name}.html"
    assert st.to_html(path, repeat=3, attribution=False).count("medians of 3 runs") == len(st)
    dom = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          f"{path.as_uri()}#selftest"], capture_output=True, text=True, timeout=120).stdout
    assert len(re.findall(r'<li class="step', dom)) == len(st)
    assert f"clicked {len(st)} steps, {len(st)} opened</pre>" in dom, dom[-300:]
