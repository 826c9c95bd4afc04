"""A model's shape from its `config.json`, read offline, for `skywork-rl preflight`.

Preflight needs a model's parameter counts per part (vision / connector / llm, the parts a recipe's
`model.trainable` names), its attention and KV heads (vLLM's tensor-parallel rule), its layer dims
(activations, KV cache) and what one image costs (token count, pixel tensor size). All of it is in
the checkpoint's `config.json` and `preprocessor_config.json`, a few KB that are read from a local
folder, a `--model-config-dir`, or the local Hugging Face cache — never downloaded.

Parameter counts are computed from the dims (the formulas below, per layer), not by building the
model: a meta-device build of a 38B model takes tens of seconds and does not exist for remote-code
checkpoints (InternVL-Chat, Skywork-R1V), which vLLM teachers use. Two layouts are read:

* transformers-native VLMs (`text_config` + `vision_config`: InternVL-hf, Qwen2.5-VL, LLaVA-like);
* the InternVL-Chat remote-code layout (`llm_config` + `vision_config`: Skywork-R1V2/R1V3-38B);
* a plain causal LM (QwQ-32B) has no vision part.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skywork_rl.errors import SkyworkError
from skywork_rl.families.registry import family_of

MODEL_CONFIG_DIR_ENV = "SKYWORK_MODEL_CONFIG_DIR"


class ModelConfigNotFound(SkyworkError):
    """No local `config.json` for a model: preflight cannot size it (and will not download it)."""


@dataclass(frozen=True)
class TextShape:
    """The decoder LLM's dims (Qwen2/Llama-style: GQA attention, gated MLP)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    max_positions: int
    tied_embeddings: bool
    qkv_bias: bool

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def params(self) -> int:
        h, d = self.hidden, self.head_dim
        attn = h * self.heads * d + 2 * h * self.kv_dim + self.heads * d * h
        if self.qkv_bias:
            attn += self.heads * d + 2 * self.kv_dim
        mlp = 3 * h * self.intermediate  # gate, up, down
        layer = attn + mlp + 2 * h  # + two RMSNorm weights
        embeddings = self.vocab * h * (1 if self.tied_embeddings else 2)
        return self.layers * layer + embeddings + h


@dataclass(frozen=True)
class ImageCost:
    """What one image becomes: tokens in the prompt and the pixel values the processor returns."""

    tokens: int
    pixel_values: int  # number of values (multiply by the dtype's bytes)
    note: str


@dataclass(frozen=True)
class VisionShape:
    """The vision tower's dims and the tokens it runs on per image (every tile; CLS included)."""

    hidden: int
    layers: int
    intermediate: int
    tokens_per_image: int
    gated: bool = False  # Qwen2.5-VL's SwiGLU MLP: gate, up, act(gate), act(gate) * up

    def layer_activation_values(self) -> int:
        """Values one ViT layer saves per token for its backward: the inputs of both norms, of the
        qkv projection, q/k/v, the attention output (the output projection's input), the MLP's input,
        its up projection and activation: 8h + 2I, or 8h + 4I with a gated MLP (ours, as
        `memory`'s decoder count, for a full-attention ViT with SDPA)."""
        return 8 * self.hidden + (4 if self.gated else 2) * self.intermediate


@dataclass(frozen=True)
class ModelShape:
    name: str
    source: str  # where config.json was read
    model_type: str
    text: TextShape
    params: dict[str, int]  # vision / connector / llm
    image: ImageCost | None
    vision: VisionShape | None = None

    @property
    def total_params(self) -> int:
        return sum(self.params.values())

    def trainable_params(self, parts: list[str]) -> int:
        return sum(self.params.get(p, 0) for p in parts)


def find_config(name: str, model_config_dir: str | Path | None = None) -> tuple[Path, str]:
    """The local `config.json` of `name` (a folder, a hub id in `model_config_dir` or in the HF cache)."""
    tried = []
    path = Path(name).expanduser()
    if (path / "config.json").is_file():
        return path / "config.json", f"local folder {path}"
    tried.append(f"folder {path}")
    if model_config_dir is not None:
        base = Path(model_config_dir)
        for candidate in (base / name, base / Path(name).name):
            if (candidate / "config.json").is_file():
                return candidate / "config.json", f"--model-config-dir {candidate}"
        tried.append(f"{base}/{name}/config.json")
    cached = _from_hf_cache(name, "config.json")
    if cached is not None:
        return cached, "local Hugging Face cache"
    tried.append("the local Hugging Face cache (HF_HUB_CACHE)")
    if name.count("/") != 1 or name.startswith((".", "/", "~")):  # a local path, not a hub id
        fix = "it is made by an earlier stage or not there yet; pass --model HUB_ID to size it as that model"
    else:
        fix = f"`hf download {name} config.json preprocessor_config.json` (a few KB)"
    raise ModelConfigNotFound(
        f"{name}: no config.json found offline (looked in {'; '.join(tried)}); preflight does not download. "
        f"Fix: {fix}, or pass --model-config-dir DIR holding DIR/<org>/<name>/config.json"
    )


def _from_hf_cache(repo_id: str, filename: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # not a valid repo id (e.g. a local path that does not exist yet)
        return None
    return Path(found) if isinstance(found, str) else None


def load_shape(name: str, model_config_dir: str | Path | None = None) -> ModelShape:
    """Read `name`'s config (and processor config when present) and compute its shape."""
    config_path, source = find_config(name, model_config_dir)
    config = json.loads(config_path.read_text())
    processor_path = config_path.with_name("preprocessor_config.json")
    if not processor_path.is_file():
        processor_path = _from_hf_cache(name, "preprocessor_config.json") or processor_path
    processor = json.loads(processor_path.read_text()) if processor_path.is_file() else {}
    return shape_from_config(name, config, processor, source=source)


def shape_from_config(
    name: str, config: dict[str, Any], processor: dict[str, Any] | None = None, *, source: str = "given"
) -> ModelShape:
    model_type = str(config.get("model_type", ""))
    text_cfg = config.get("text_config") or config.get("llm_config")
    if text_cfg is None and "num_hidden_layers" in config:
        text_cfg = config  # a causal LM, or a VLM with its text dims at the top level (Qwen2.5-VL)
    if not isinstance(text_cfg, dict):
        raise ModelConfigNotFound(f"{name}: config.json has no text_config / llm_config with the LLM's dims")
    text = _text_shape(name, text_cfg)
    vision_cfg = config.get("vision_config")
    params = {"vision": 0, "connector": 0, "llm": text.params()}
    image = vision = None
    if isinstance(vision_cfg, dict):
        params["vision"] = vision_params(vision_cfg)
        params["connector"] = _connector_params(config, vision_cfg, text)
        image = _image_cost(config, vision_cfg, processor or {})
        vision = _vision_shape(config, vision_cfg, image)
    return ModelShape(name, source, model_type, text, params, image, vision)


def _vision_shape(config: dict[str, Any], vision: dict[str, Any], image: ImageCost) -> VisionShape:
    """ViT tokens per image: InternVL tiles x ((size / patch)^2 + CLS); Qwen-VL's patches before the
    2x2 merge (tokens x merge^2); a single-crop ViT (size / patch)^2 + CLS."""
    h = int(vision.get("hidden_size") or vision.get("embed_dim"))
    layers = int(vision.get("num_hidden_layers") or vision.get("depth"))
    inter = int(vision.get("intermediate_size") or 4 * h)
    patch = _pair(vision.get("patch_size", 14))
    if "downsample_ratio" in config:
        size = _pair(vision.get("image_size") or config.get("force_image_size") or 448)
        tiles = image.pixel_values // (3 * size * size)
        tokens = tiles * ((size // patch) ** 2 + 1)
    elif "spatial_merge_size" in vision:
        tokens = image.tokens * int(vision["spatial_merge_size"]) ** 2
    else:
        tokens = image.tokens + 1
    return VisionShape(h, layers, inter, tokens, gated=_gated_vision(vision))


def _text_shape(name: str, cfg: dict[str, Any]) -> TextShape:
    try:
        hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        return TextShape(
            hidden=hidden,
            layers=int(cfg["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            intermediate=int(cfg["intermediate_size"]),
            vocab=int(cfg["vocab_size"]),
            max_positions=int(cfg.get("max_position_embeddings") or 0),
            tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            # Qwen2/2.5 have q/k/v biases; Llama-style configs say so with attention_bias.
            qkv_bias=bool(cfg.get("attention_bias", cfg.get("model_type") == "qwen2")),
        )
    except KeyError as exc:
        raise ModelConfigNotFound(f"{name}: the LLM config lacks {exc.args[0]!r}") from exc


def _pair(value: Any) -> int:
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def _gated_vision(vision: dict[str, Any]) -> bool:
    """Whether the vision blocks use a gated (SwiGLU) MLP: the `vision_gated_mlp` of the family its
    vision config's `model_type` names (Qwen2.5-VL's, in `skywork_rl/families/qwen_vl.py`)."""
    family = family_of(vision.get("model_type"))
    return family is not None and family.vision_gated_mlp


def vision_params(cfg: dict[str, Any]) -> int:
    """ViT encoder: per layer q/k/v/out projections 4h² and the MLP (2·h·I, or 3·h·I when gated)."""
    h = int(cfg.get("hidden_size") or cfg.get("embed_dim"))
    layers = int(cfg.get("num_hidden_layers") or cfg.get("depth"))
    inter = int(cfg.get("intermediate_size") or 4 * h)
    patch = _pair(cfg.get("patch_size", 14))
    gated = _gated_vision(cfg)
    per_layer = 4 * h * h + (3 if gated else 2) * h * inter + 8 * h  # + biases, norms, layer scales
    temporal = int(cfg.get("temporal_patch_size", 1))
    embed = 3 * temporal * patch * patch * h
    if "image_size" in cfg and not gated:  # absolute position embeddings (InternViT, CLIP/SigLIP)
        embed += ((_pair(cfg["image_size"]) // patch) ** 2 + 1) * h
    return layers * per_layer + embed


def _connector_params(config: dict[str, Any], vision: dict[str, Any], text: TextShape) -> int:
    vh = int(vision.get("hidden_size") or vision.get("embed_dim"))
    if "downsample_ratio" in config:  # InternVL mlp1: LayerNorm(vh·r²), Linear(vh·r²→h), Linear(h→h)
        width = int(vh * round(1 / config["downsample_ratio"]) ** 2)
        return 2 * width + width * text.hidden + text.hidden + text.hidden * text.hidden + text.hidden
    if "spatial_merge_size" in vision:  # Qwen-VL merger: LN(vh), Linear(vh·m²→vh·m²), Linear(→out)
        width = vh * int(vision["spatial_merge_size"]) ** 2
        out = int(vision.get("out_hidden_size") or text.hidden)
        return vh + width * width + width + width * out + out
    return vh * text.hidden + text.hidden * text.hidden + 2 * text.hidden  # LLaVA 2-layer MLP


def _image_cost(config: dict[str, Any], vision: dict[str, Any], processor: dict[str, Any]) -> ImageCost:
    patch = _pair(vision.get("patch_size", 14))
    if "downsample_ratio" in config:  # InternVL tiles of image_size px, plus a thumbnail
        size = _pair(vision.get("image_size") or config.get("force_image_size") or 448)
        max_tiles = int(processor.get("max_patches") or config.get("max_dynamic_patch") or 12)
        # InternVLProcessor crops to patches by default (images_kwargs crop_to_patches=True), and
        # adds a thumbnail tile when an image is cut into more than one.
        tiles = max_tiles + 1 if max_tiles > 1 else 1
        per_tile = int(
            config.get("image_seq_length") or (size // patch) ** 2 * config["downsample_ratio"] ** 2
        )
        return ImageCost(
            tiles * per_tile + 2,
            tiles * 3 * size * size,
            f"{tiles} tiles of {size} px (max_patches {max_tiles} + thumbnail)",
        )
    if "spatial_merge_size" in vision:  # Qwen-VL: patches of 14 px, merged 2x2 into tokens
        max_pixels = int(
            processor.get("max_pixels") or processor.get("size", {}).get("longest_edge") or 12845056
        )
        patches = max_pixels // (patch * patch)
        temporal = int(vision.get("temporal_patch_size", 2))
        merge = int(vision["spatial_merge_size"]) ** 2
        return ImageCost(
            patches // merge, patches * 3 * temporal * patch * patch, f"up to {max_pixels} px (max_pixels)"
        )
    size = _pair(vision.get("image_size", 336))
    return ImageCost((size // patch) ** 2, 3 * size * size, f"one {size} px image")


def layer_params(text: TextShape) -> int:
    """Parameters of one decoder layer (ZeRO-3 gathers a layer at a time)."""
    return (text.params() - text.vocab * text.hidden * (1 if text.tied_embeddings else 2)) // text.layers


class ShapeCache:
    """Model shapes by name, each config read once; a missing one is remembered with its reason.

    `model_config_dir` defaults to $SKYWORK_MODEL_CONFIG_DIR, so `run --dry-run` finds the same configs.
    """

    def __init__(self, model_config_dir: str | Path | None) -> None:
        folder = model_config_dir or os.environ.get(MODEL_CONFIG_DIR_ENV)
        self.dir = str(folder) if folder else None
        self.found: dict[str, ModelShape] = {}
        self.missing: dict[str, str] = {}

    def get(self, name: str) -> ModelShape | None:
        if name not in self.found and name not in self.missing:
            try:
                self.found[name] = load_shape(name, self.dir)
            except ModelConfigNotFound as exc:
                self.missing[name] = str(exc)
        return self.found.get(name)
