"""Sound: a soundscape made from the same state as the picture, that forgets with it.

synth.py is the pure synthesis (numpy only: states and cues in, samples out); features.py reads
the cues from the engine and the rendered frame; live.py plays it through sounddevice; track.py
makes a film's soundtrack frame by frame and writes WAV files. Devices and threads stay in
live.py; everything else is deterministic.
"""
from .synth import Cues, Soundscape

__all__ = ["Cues", "Soundscape"]
