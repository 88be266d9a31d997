"""Where symptoms strike: meaningful layer names, target patterns, and per-parameter facts.

Settings name layers the way the generator does (`Generator.layer_names`: "stem", "up8" …
"to_rgb"), while a state dict says "blocks.up16.conv.weight". This module is the one place
that maps between them, so a target such as "up16", "up*", "blocks.up16", "stem,up8" or
"*.bias" means the same thing to weight and to activation symptoms.
"""
from __future__ import annotations

from fnmatch import fnmatchcase
from functools import partial
from typing import Mapping, Sequence

import torch
from torch import nn

from .base import ParamInfo

CONTAINERS = ("blocks",)        # module containers that carry no meaning of their own


def layer_of(name: str) -> str:
    """Meaningful layer of a module or state-dict name: "blocks.up16.conv.weight" -> "up16",
    "stem.fc.weight" -> "stem", "to_rgb.1.bias" -> "to_rgb"."""
    parts = name.split(".")
    while len(parts) > 1 and parts[0] in CONTAINERS:
        parts = parts[1:]
    return parts[0]


def matches(pattern: str, name: str) -> bool:
    """Whether a target pattern selects `name` (a layer, module or state-dict name).

    `pattern` is one or more comma-separated fnmatch patterns; each may name the meaningful
    layer ("up16", "up*"), a full name ("blocks.up16.conv.weight", "*.bias") or a module prefix
    ("blocks.up16" selects everything inside it). An empty pattern selects nothing."""
    layer = layer_of(name)
    for alternative in (p.strip() for p in pattern.split(",")):
        if alternative and (fnmatchcase(layer, alternative) or fnmatchcase(name, alternative)
                            or fnmatchcase(name, alternative + ".*")):
            return True
    return False


def _last_leaf(module: nn.Module) -> nn.Module:
    # a Sequential's output is its last child's output, and the last child is called even when
    # the owner calls the children one by one (the DCGAN stem does), so hook that
    while isinstance(module, nn.Sequential) and len(module) > 0:
        module = module[-1]
    return module


def layer_modules(generator: nn.Module) -> dict[str, nn.Module]:
    """Meaningful layer name -> the module whose forward output is that layer's feature maps."""
    found: dict[str, nn.Module] = {}
    for layer in generator.layer_names:
        for prefix in ("", *(c + "." for c in CONTAINERS)):
            try:
                found[layer] = _last_leaf(generator.get_submodule(prefix + layer))
                break
            except AttributeError:
                continue
        else:
            raise ValueError(f"layer {layer!r} of {type(generator).__name__} has no module")
    return found


def layer_channels(generator: nn.Module) -> dict[str, int]:
    """Output channels of every meaningful layer, measured by one tiny forward pass (the stem's
    linear layer has 16x more units than the channels they are reshaped into; only running the
    network says so for every architecture). Leaves training mode and running stats as they were."""
    shapes: dict[str, int] = {}

    def record(layer: str, module: nn.Module, inputs, output: torch.Tensor) -> None:
        shapes[layer] = output.shape[1]                 # returns None: the output is left alone

    hooks = [module.register_forward_hook(partial(record, layer)) for layer, module in layer_modules(generator).items()]
    was_training = generator.training
    try:
        generator.eval()
        device = next(generator.parameters()).device
        with torch.no_grad():
            generator(torch.zeros(1, generator.latent_size, device=device))
    finally:
        generator.train(was_training)
        for hook in hooks:
            hook.remove()
    return shapes


def _module_kind(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return "conv_transpose"
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
        return "norm"
    return "other"


def _role_and_out_dim(kind: str, leaf: str, is_param: bool) -> tuple[str, int | None]:
    if not is_param:
        return "buffer", 0
    if kind in ("linear", "conv", "conv_transpose") and leaf in ("weight", "bias"):
        # ConvTranspose weights are [in, out, k, k]: output channels on dim 1
        return leaf, 1 if (kind == "conv_transpose" and leaf == "weight") else 0
    if kind == "norm":
        return "norm", 0
    return "param", None


def param_infos(generator: nn.Module, snapshots: Sequence[Mapping[str, torch.Tensor]] = ()) -> dict[str, ParamInfo]:
    """ParamInfo for every floating-point state-dict entry of the generator."""
    modules = dict(generator.named_modules())
    param_names = {n for n, _ in generator.named_parameters()}
    channels = layer_channels(generator)
    infos = {}
    for name, value in generator.state_dict().items():
        if not value.is_floating_point():
            continue                                    # e.g. BatchNorm's num_batches_tracked
        owner, _, leaf = name.rpartition(".")
        kind = _module_kind(modules[owner])
        role, out_dim = _role_and_out_dim(kind, leaf, name in param_names)
        history = tuple(s[name].float() for s in snapshots if name in s and s[name].shape == value.shape)
        infos[name] = ParamInfo(name=name, layer=layer_of(name), module_kind=kind, role=role, out_dim=out_dim,
                                channels=channels.get(layer_of(name)), snapshots=history)
    return infos
