"""Test fixtures with the real Stable Diffusion layout: a tiny random-weight pipeline, built offline.

Every component is made from a config (no hub download), so tests of any command that takes a
diffusers folder run on the exact `StableDiffusionPipeline` structure (VAE latents, CLIP BPE
tokenizer, cross-attention UNet with GEGLU feed-forward nets ending in `ff.net.2`) in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
TEXT_DIM = 32
MAX_LENGTH = 77

# 8x8 latents (16x16 images); 4 transformer blocks: 1 down, 1 mid, 2 up (ff.net.2 of 32x128).
UNET_CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(16, 32),
    layers_per_block=1,
    norm_num_groups=8,
    cross_attention_dim=TEXT_DIM,
    attention_head_dim=4,
)
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    block_out_channels=(8, 16),
    latent_channels=4,
    norm_num_groups=8,
    sample_size=16,
)
# Stable Diffusion 1.x's scheduler settings.
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
)


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP's printable stand-in for each of the 256 bytes, in byte order."""
    keep = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def tiny_clip_tokenizer() -> CLIPTokenizer:
    """A byte-level CLIP BPE tokenizer with no merges: every word is spelled out in bytes."""
    chars = _bytes_to_unicode()
    tokens = chars + [c + "</w>" for c in chars] + [BOS, EOS]
    vocab = {t: i for i, t in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_LENGTH)


def tiny_safety_checker():
    """A tiny random StableDiffusionSafetyChecker and its feature extractor (32 px CLIP vision tower)."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    small = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)
    cfg = CLIPConfig(text_config=dict(vocab_size=100, bos_token_id=0, eos_token_id=1, pad_token_id=1, **small),
                     vision_config=dict(image_size=32, patch_size=8, **small), projection_dim=16)
    return StableDiffusionSafetyChecker(cfg), CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32})


def tiny_sd_pipeline(path: str | Path, seed: int = 0, safety_checker: bool = False) -> Path:
    """Build a tiny random-weight StableDiffusionPipeline, `save_pretrained` it to `path`, return `path`
    (with a tiny random safety checker, as SD1.x folders ship one, when `safety_checker`)."""
    path = Path(path)
    torch.manual_seed(seed)
    tokenizer = tiny_clip_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_DIM, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=MAX_LENGTH,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))
    checker, extractor = tiny_safety_checker() if safety_checker else (None, None)
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL(**VAE_CONFIG),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=UNet2DConditionModel(**UNET_CONFIG),
        scheduler=DDIMScheduler(**SCHEDULER_CONFIG),
        safety_checker=checker,
        feature_extractor=extractor,
        requires_safety_checker=safety_checker,
    )
    pipe.save_pretrained(path)
    # The classic slow-tokenizer files too, as in real SD folders (older transformers read only these).
    (path / "tokenizer" / "vocab.json").write_text(json.dumps(tokenizer.get_vocab(), ensure_ascii=False))
    (path / "tokenizer" / "merges.txt").write_text("#version: 0.2\n")
    return path


def tiny_minisd_pipeline(path: str | Path, seed: int = 0) -> Path:
    """A random-weight miniature Stable Diffusion saved to `path`: the real VAE, text encoder and tokenizer
    (the 64x64 world's words) around a two-level UNet, so it draws that world's 64x64 images fast."""
    from revival.minisd.autoencoder import build_vae
    from revival.minisd.pipeline import assemble, tokenizer
    from revival.minisd.text_encoder import TEXT_DIM as MINISD_TEXT_DIM
    from revival.minisd.text_encoder import text_config

    path = Path(path)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=MINISD_TEXT_DIM, attention_head_dim=4, norm_num_groups=8,
    )
    pipe = assemble(build_vae(seed), CLIPTextModel(text_config(len(tokenizer()))), unet)
    pipe.save_pretrained(path)
    return path


# ---------------------------------------------------------------- the other diffusers text-to-image families
def _clip_config(tokenizer: CLIPTokenizer, hidden: int = TEXT_DIM, projection: int | None = None) -> CLIPTextConfig:
    extra = {} if projection is None else {"projection_dim": projection}
    return CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=MAX_LENGTH, hidden_act="gelu",
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **extra,
    )


def tiny_t5_tokenizer():
    """A character-level T5 (Unigram) tokenizer built in memory: lower-case letters, digits and punctuation."""
    from transformers import T5Tokenizer

    chars = [chr(c) for c in range(ord("!"), ord("~") + 1)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    vocab += [(c, -2.0) for c in chars] + [("\u2581" + c, -2.5) for c in chars]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def _tiny_t5_encoder(tokenizer, d_model: int = TEXT_DIM):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=d_model, d_kv=8, d_ff=2 * d_model, num_layers=2,
                                   num_heads=4, relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                                   decoder_start_token_id=0))


def _save(pipe, path: Path) -> Path:
    pipe.save_pretrained(path)
    for name in ("tokenizer", "tokenizer_2"):
        tok = getattr(pipe, name, None)
        if isinstance(tok, CLIPTokenizer):
            (path / name / "vocab.json").write_text(json.dumps(tok.get_vocab(), ensure_ascii=False))
            (path / name / "merges.txt").write_text("#version: 0.2\n")
    return path


def tiny_sd2_pipeline(path: str | Path, seed: int = 0) -> Path:
    """Stable Diffusion 2.x's layout: v-prediction, linear projections in the transformer blocks, per-level heads."""
    path = Path(path)
    torch.manual_seed(seed)
    tokenizer = tiny_clip_tokenizer()
    unet = UNet2DConditionModel(**{**UNET_CONFIG, "attention_head_dim": (2, 4), "use_linear_projection": True,
                                   "upcast_attention": True})
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL(**VAE_CONFIG), text_encoder=CLIPTextModel(_clip_config(tokenizer)), tokenizer=tokenizer,
        unet=unet, scheduler=DDIMScheduler(**SCHEDULER_CONFIG, prediction_type="v_prediction"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    return _save(pipe, path)


def tiny_sdxl_pipeline(path: str | Path, seed: int = 0) -> Path:
    """SDXL's layout: two text encoders (the second with projection), `text_time` added conditioning."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModelWithProjection

    path = Path(path)
    torch.manual_seed(seed)
    tokenizer = tiny_clip_tokenizer()
    time_dim = 8
    unet = UNet2DConditionModel(**{**UNET_CONFIG, "attention_head_dim": (2, 4), "use_linear_projection": True,
                                   "cross_attention_dim": 2 * TEXT_DIM, "addition_embed_type": "text_time",
                                   "addition_time_embed_dim": time_dim, "transformer_layers_per_block": (1, 2),
                                   "projection_class_embeddings_input_dim": 6 * time_dim + TEXT_DIM})
    pipe = StableDiffusionXLPipeline(
        vae=AutoencoderKL(**VAE_CONFIG), text_encoder=CLIPTextModel(_clip_config(tokenizer)),
        text_encoder_2=CLIPTextModelWithProjection(_clip_config(tokenizer, projection=TEXT_DIM)),
        tokenizer=tokenizer, tokenizer_2=tiny_clip_tokenizer(), unet=unet,
        scheduler=EulerDiscreteScheduler(**{k: v for k, v in SCHEDULER_CONFIG.items()
                                            if k not in ("clip_sample", "set_alpha_to_one")}),
    )
    return _save(pipe, path)


# Flow-matching VAE of the transformer families: one level, no quant convs (SD3 / Flux tests in diffusers).
FLOW_VAE_CONFIG = dict(sample_size=16, in_channels=3, out_channels=3, block_out_channels=(8,), layers_per_block=1,
                       norm_num_groups=8, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609,
                       scaling_factor=1.5035)


def tiny_sd3_pipeline(path: str | Path, seed: int = 0) -> Path:
    """SD3's layout: an MMDiT transformer (joint blocks, `ff.net.2` and `ff_context.net.2`), two CLIP encoders,
    a T5 encoder whose width is the joint attention width, flow matching."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    path = Path(path)
    torch.manual_seed(seed)
    tokenizer = tiny_clip_tokenizer()
    t5_tokenizer = tiny_t5_tokenizer()
    transformer = SD3Transformer2DModel(sample_size=8, patch_size=1, in_channels=4, num_layers=2,
                                        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
                                        joint_attention_dim=2 * TEXT_DIM, pooled_projection_dim=2 * TEXT_DIM,
                                        out_channels=4, pos_embed_max_size=16)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=AutoencoderKL(**{**FLOW_VAE_CONFIG, "latent_channels": 4}),
        text_encoder=CLIPTextModelWithProjection(_clip_config(tokenizer, projection=TEXT_DIM)), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(_clip_config(tokenizer, projection=TEXT_DIM)),
        tokenizer_2=tiny_clip_tokenizer(), text_encoder_3=_tiny_t5_encoder(t5_tokenizer, 2 * TEXT_DIM),
        tokenizer_3=t5_tokenizer,
    )
    return _save(pipe, path)


def tiny_flux_pipeline(path: str | Path, seed: int = 0) -> Path:
    """Flux's layout: dual-stream blocks (`ff.net.2`, `ff_context.net.2`) and single-stream blocks (no FFN module),
    CLIP pooled + T5 sequence conditioning, flow matching. Generate at --height/--width 16 (the pipeline's
    default size is 1024 whatever the config)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    path = Path(path)
    torch.manual_seed(seed)
    tokenizer = tiny_clip_tokenizer()
    t5_tokenizer = tiny_t5_tokenizer()
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=2, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=TEXT_DIM,
                                         pooled_projection_dim=TEXT_DIM, axes_dims_rope=(4, 4, 8))
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=AutoencoderKL(**{**FLOW_VAE_CONFIG, "latent_channels": 1}),
        text_encoder=CLIPTextModel(_clip_config(tokenizer, projection=TEXT_DIM)), tokenizer=tokenizer,
        text_encoder_2=_tiny_t5_encoder(t5_tokenizer), tokenizer_2=t5_tokenizer, transformer=transformer,
    )
    return _save(pipe, path)


TINY_FAMILIES = {"sd1": tiny_sd_pipeline, "sd2": tiny_sd2_pipeline, "sdxl": tiny_sdxl_pipeline,
                 "sd3": tiny_sd3_pipeline, "flux": tiny_flux_pipeline}


# ---------------------------------------------------------------- tiny random evaluators
def tiny_clip_folder(path: str | Path, seed: int = 0) -> Path:
    """A tiny random CLIPModel + CLIPProcessor saved like a downloaded checkpoint (32 px images, ViT patch 8)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = tiny_clip_tokenizer()
    proc = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                            crop_size={"height": 32, "width": 32}), tokenizer=tok)
    small = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)
    cfg = CLIPConfig(text_config=dict(vocab_size=len(tok), max_position_embeddings=MAX_LENGTH,
                                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                      pad_token_id=tok.pad_token_id, **small),
                     vision_config=dict(image_size=32, patch_size=8, **small), projection_dim=16)
    torch.manual_seed(seed)
    CLIPModel(cfg).save_pretrained(path)
    proc.save_pretrained(path)
    (path / "vocab.json").write_text(json.dumps(tok.get_vocab(), ensure_ascii=False))
    (path / "merges.txt").write_text("#version: 0.2\n")
    return path


def tiny_resnet50_file(path: str | Path, favour: str | None = None, seed: int = 0) -> Path:
    """Random ResNet-50 weights (torchvision layout) as fp16 safetensors; with `favour` (an Imagenette class) the
    classifier calls every image that class, so accuracies are known."""
    from safetensors.torch import save_file

    from revival.evaluate.sd_evaluators import IMAGENETTE_CLASSES, ResNet50

    path = Path(path)
    torch.manual_seed(seed)
    state = ResNet50().state_dict()
    if favour is not None:
        state["fc.weight"] = torch.zeros_like(state["fc.weight"])
        state["fc.bias"] = torch.nn.functional.one_hot(torch.tensor(IMAGENETTE_CLASSES[favour]), 1000).float()
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(path))
    return path
