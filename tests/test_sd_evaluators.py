"""Stable Diffusion evaluators on tiny local files: ResNet-50 loading, CLIP score, NudeNet glue, prompt sets."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from revival.errors import RevivalError
from revival.evaluate import sd_evaluators as sde
from revival.evaluate.paper_prompts import ARTISTS, artist_prompts, coco_prompts, imagenette_prompts, prompt_set


@pytest.fixture(scope="module")
def resnet_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return sde.ResNet50().state_dict()


def _images(n: int, size: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_resnet50_has_torchvision_layout(resnet_state):
    assert len(resnet_state) == 320  # torchvision's resnet50().state_dict() has 320 entries
    assert sum(v.numel() for k, v in resnet_state.items() if "running" not in k and "num_batches" not in k) \
        == 25_557_032  # torchvision's ResNet-50 parameter count
    assert resnet_state["layer2.0.downsample.0.weight"].shape == (512, 256, 1, 1)
    assert resnet_state["layer3.5.conv2.weight"].shape == (256, 256, 3, 3)
    assert resnet_state["fc.weight"].shape == (1000, 2048)


def test_resnet50_matches_torchvision_when_available(resnet_state):
    try:
        from torchvision.models import resnet50
    except Exception as e:  # noqa: BLE001 - a CUDA torchvision beside CPU torch fails at import with RuntimeError
        pytest.skip(f"torchvision not importable here: {str(e).splitlines()[0]}")
    ref = resnet50(weights=None).eval()
    ref.load_state_dict(resnet_state, strict=True)
    mine = sde.ResNet50().eval()
    mine.load_state_dict(resnet_state)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ref(x), mine(x))


def test_classifier_loads_and_scores_accuracy(resnet_state, tmp_path):
    state = dict(resnet_state)
    state["fc.weight"] = torch.zeros(1000, 2048)
    state["fc.bias"] = F.one_hot(torch.tensor(sde.IMAGENETTE_CLASSES["church"]), 1000).float()
    path = tmp_path / "resnet50.safetensors"
    save_file(state, str(path))
    clf = sde.SD_EVALUATORS.get("resnet50")(path, resize=64, crop=56)  # small inputs keep the test fast
    labels = ["church", "church", "golf ball"]
    acc = clf.accuracy(_images(3), labels)
    assert acc["accuracy"] == pytest.approx(2 / 3) and acc["per_class"] == {"church": 1.0, "golf ball": 0.0}
    with pytest.raises(RevivalError, match="unknown Imagenette class"):
        clf.accuracy(_images(1), ["tench"])


def test_classifier_file_errors(resnet_state, tmp_path):
    with pytest.raises(RevivalError, match="resnet50-11ad3fa6.pth") as e:
        sde.ImageNetClassifier.load(tmp_path / "missing.pth")
    assert "\n" not in str(e.value)
    pth = tmp_path / "resnet50.pth"
    torch.save(resnet_state, pth)
    with pytest.raises(RevivalError, match="allow-pickle"):
        sde.ImageNetClassifier.load(pth)
    assert isinstance(sde.ImageNetClassifier.load(pth, allow_pickle=True).model, sde.ResNet50)
    bad = tmp_path / "bad.safetensors"
    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, str(bad))
    with pytest.raises(RevivalError, match="not a torchvision ResNet-50"):
        sde.ImageNetClassifier.load(bad)


def test_imagenet_preprocess_resizes_crops_normalises():
    im = np.full((1, 300, 400, 3), 128, np.uint8)
    im[0, :, :50] = 0  # a dark band at the left edge is cropped away by the centre crop
    x = sde.imagenet_preprocess(im)
    assert x.shape == (1, 3, 224, 224)
    expected = (128 / 255 - torch.tensor(sde.IMAGENET_MEAN)) / torch.tensor(sde.IMAGENET_STD)
    assert torch.allclose(x[0].mean(dim=(1, 2)), expected, atol=1e-5)


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """A tiny random CLIPModel + CLIPProcessor saved like a downloaded checkpoint."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    d = tmp_path_factory.mktemp("clip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in map(chr, range(33, 127)):
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"))
    proc = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                            crop_size={"height": 32, "width": 32}), tokenizer=tok)
    small = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)
    cfg = CLIPConfig(text_config=dict(vocab_size=len(vocab), max_position_embeddings=77, bos_token_id=0,
                                      eos_token_id=1, pad_token_id=1, **small),
                     vision_config=dict(image_size=32, patch_size=8, **small), projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(d)
    proc.save_pretrained(d)
    return d


def test_clip_score_is_pairwise_cosine(clip_folder):
    scorer = sde.SD_EVALUATORS.get("clip")(clip_folder)
    images = _images(3, 40)
    texts = ["Water Lilies by Claude Monet", "a dog", "A group of people next to a bus."]
    s = scorer.score(images, texts, batch_size=2)
    assert s.shape == (3,) and np.all(np.abs(s) <= 1 + 1e-6)
    assert len(set(np.round(s, 6))) == 3  # different pairs, different scores
    # independent computation of pair 1 from the towers and projections
    m, p = scorer.model, scorer.processor
    with torch.no_grad():
        inp = p(text=[texts[1]], images=[images[1]], return_tensors="pt", padding=True)
        img = F.normalize(m.visual_projection(m.vision_model(pixel_values=inp["pixel_values"]).pooler_output), dim=-1)
        txt = F.normalize(m.text_projection(m.text_model(input_ids=inp["input_ids"]).pooler_output), dim=-1)
    assert s[1] == pytest.approx(float((img * txt).sum()), abs=1e-5)
    with pytest.raises(ValueError, match="2 images but 3 texts"):
        scorer.score(images[:2], texts)


def test_clip_folder_errors(clip_folder, tmp_path):
    with pytest.raises(RevivalError, match="CLIP model folder") as e:
        sde.ClipScorer.load(tmp_path / "nope")
    assert "\n" not in str(e.value) and "nope" in str(e.value)
    with pytest.raises(RevivalError, match="config.json"):
        sde.ClipScorer.load(tmp_path)


def test_nudity_summary_counts_exposed_labels_over_threshold():
    dets = [[{"class": "FEMALE_BREAST_EXPOSED", "score": 0.9}, {"class": "FACE_FEMALE", "score": 0.99}],
            [{"class": "BELLY_EXPOSED", "score": 0.4}],
            [],
            [{"class": "BUTTOCKS_EXPOSED", "score": 0.51}, {"class": "BUTTOCKS_EXPOSED", "score": 0.7}]]
    s = sde.nudity_summary(dets)
    assert s["images_with_nudity"] == 2 and s["flagged"] == [True, False, False, True]
    assert s["per_label"]["BUTTOCKS_EXPOSED"] == 2 and s["per_label"]["BELLY_EXPOSED"] == 0
    assert "FACE_FEMALE" not in s["per_label"]


def test_nudity_detector_feeds_png_bytes():
    seen = []

    class Fake:
        def detect(self, data: bytes):
            seen.append(np.asarray(Image.open(io.BytesIO(data))))
            return [{"class": "ANUS_EXPOSED", "score": 0.8}] if len(seen) == 2 else []

    images = _images(3, 16)
    summary = sde.NudityDetector(Fake()).summary(images)
    assert summary["flagged"] == [False, True, False]
    assert all(np.array_equal(a, b) for a, b in zip(seen, images, strict=True))


def test_nudenet_missing_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "nudenet", None)  # makes `import nudenet` raise ImportError
    with pytest.raises(RevivalError, match=r"pip install 'nudenet") as e:
        sde.SD_EVALUATORS.get("nudenet")()
    assert "\n" not in str(e.value) and "AGPL" in str(e.value)


def test_evaluator_registry_lists_names():
    assert sde.SD_EVALUATORS.names() == ["resnet50", "clip", "nudenet"]
    with pytest.raises(RevivalError, match="known: resnet50, clip, nudenet"):
        sde.SD_EVALUATORS.get("fid")


def test_paper_prompt_sets():
    im = imagenette_prompts()
    classes = sorted(set(im.labels))
    assert classes == sorted(sde.IMAGENETTE_CLASSES) and len(im) == 500 * len(classes)
    assert all(p.startswith("an image of") and c in p for p, c in zip(im.prompts, im.labels, strict=True))
    church = im.select(["church"])
    assert len(church) == 500 and len(set(church.seeds)) > 400
    assert len(im.head(2)) == 2 * len(classes) and im.head(2).select(["church"]).seeds == church.seeds[:2]
    for a in ARTISTS:
        s = artist_prompts(a)
        assert len(s) == 50 and all(" by " in p for p in s.prompts)
    assert artist_prompts("Monet").seeds[:2] == (2219, 4965)
    coco = coco_prompts(seed=10)
    assert len(coco) == 480 and coco.seeds[:2] == (10, 11)
    assert len(prompt_set("ring-a-bell")) > 50
    with pytest.raises(RevivalError, match="known: imagenette, coco, ring-a-bell, Van Gogh"):
        prompt_set("i2p")
