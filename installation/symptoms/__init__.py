"""The symptoms of Lapses: one small module each, by level (docs/design.md's table has their levels).

Each module exports `SYMPTOM` (a `base.Symptom`: name, level, default target, description and
a pure effect of intensity in [0, 1]). The installation applies them to a live generator:
weights.py the weight symptoms (damage.py loads the results), hooks.py the activation ones,
levels.py the latent and output ones; the walk calls the walk-level ones (`hesitation.warp`,
`perseveration.visit`) directly.
"""
from __future__ import annotations

from . import (bit_rot, confusion, detail_loss, fading, feature_dropout, forgetting, hesitation, lapses, misidentification,
               neuron_death, noise_swell, perseveration, plaques, precision_loss, regression, static, synapse_loss,
               tangles, weight_noise)
from .base import (LEVELS, ActivationSymptom, DetailSymptom, LatentSymptom, OutputSymptom, ParamInfo, Symptom, WalkSymptom,
                   WeightSymptom)

SYMPTOMS: dict[str, Symptom] = {module.SYMPTOM.name: module.SYMPTOM for module in (
    synapse_loss, neuron_death, weight_noise, precision_loss, bit_rot, regression,   # weights
    misidentification, noise_swell,                                                  # weights, style models only
    feature_dropout, plaques, tangles, static,                                       # activations
    forgetting, confusion,                                                           # latent
    perseveration, hesitation,                                                       # walk
    lapses, fading,                                                                  # output
    detail_loss,                                                                     # the detail stage
)}

NAMES: tuple[str, ...] = tuple(SYMPTOMS)

# The order settings use (docs/design.md's table): the names settings accept, and the order that numbers
# the MIDI controls, so a symptom added later goes last and the others keep their numbers.
SYMPTOM_NAMES: tuple[str, ...] = tuple(module.SYMPTOM.name for module in (
    synapse_loss, neuron_death, weight_noise, precision_loss, bit_rot, regression,
    feature_dropout, plaques, tangles, static,
    forgetting, confusion,
    perseveration, hesitation,
    lapses, fading,
    misidentification, noise_swell,   # weights, style-based generators only (inert on a DCGAN)
    detail_loss,                      # the detail stage (a model without one: no effect)
))
if sorted(SYMPTOM_NAMES) != sorted(NAMES):
    raise ImportError("installation.symptoms: SYMPTOM_NAMES and SYMPTOMS name different symptoms")


def get(name: str) -> Symptom:
    """The symptom called `name`; an unknown name is an error that lists the known ones."""
    try:
        return SYMPTOMS[name]
    except KeyError:
        raise KeyError(f"unknown symptom {name!r}; known symptoms: {', '.join(NAMES)}") from None


def at_level(level: str) -> list[Symptom]:
    """Symptoms of one level, in table order."""
    if level not in LEVELS:
        raise ValueError(f"unknown symptom level {level!r}; levels: {', '.join(LEVELS)}")
    return [s for s in SYMPTOMS.values() if s.level == level]


__all__ = ["SYMPTOMS", "NAMES", "SYMPTOM_NAMES", "get", "at_level", "Symptom", "WeightSymptom", "ActivationSymptom",
           "LatentSymptom", "WalkSymptom", "OutputSymptom", "DetailSymptom", "ParamInfo", "LEVELS"]
