"""Architecture name → (config class, generator, discriminator); the one place that knows them all."""
from __future__ import annotations

import json

from . import dcgan, stylegan

_ARCHITECTURES = {
    dcgan.ARCHITECTURE: (dcgan.DCGANConfig, dcgan.Generator, dcgan.Discriminator),
    stylegan.ARCHITECTURE: (stylegan.StyleGANConfig, stylegan.StyleGenerator, stylegan.StyleDiscriminator),
}


def register(name: str, config_cls, generator_cls, discriminator_cls) -> None:
    _ARCHITECTURES[name] = (config_cls, generator_cls, discriminator_cls)


def names() -> list[str]:
    return sorted(_ARCHITECTURES)


def _lookup(name: str):
    if name not in _ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r} (known: {', '.join(names())})")
    return _ARCHITECTURES[name]


def config_from_json(name: str, text: str):
    return _lookup(name)[0].from_dict(json.loads(text))


def config_from_dict(name: str, values: dict):
    return _lookup(name)[0].from_dict(values)


def build_generator(name: str, config):
    return _lookup(name)[1](config)


def build_discriminator(name: str, config):
    return _lookup(name)[2](config)
