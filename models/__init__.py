"""Generator architectures, their stable layer names, and safe checkpoint I/O.

`models` imports neither `training` nor `installation`: both depend on it.
"""
from .checkpoint import (Anchor, CheckpointError, GeneratorMeta, load_generator, load_resume,
                         read_header, save_generator, save_resume, atomic_write)
from .detail import DetailError, DetailPack, DetailStage
from .dcgan import DCGANConfig, Discriminator, Generator
from .latent import shell_radius, to_shell, walk_between
from .stylegan import StyleDiscriminator, StyleGANConfig, StyleGenerator
from . import registry

__all__ = ["Anchor", "CheckpointError", "GeneratorMeta", "load_generator", "load_resume", "read_header",
           "save_generator", "save_resume", "atomic_write", "DetailError", "DetailPack", "DetailStage", "DCGANConfig", "Discriminator", "Generator",
           "shell_radius", "to_shell", "walk_between",
           "StyleGANConfig", "StyleGenerator", "StyleDiscriminator", "registry"]
