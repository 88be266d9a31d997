"""Live inputs: keyboard, MIDI, OSC and camera presence, all turned into the piece's actions and
parameters through one mapping table (settings.yaml `inputs:`).

Kept light on purpose: `installation.settings` imports `rules`, `keys` and `spec` from here to
validate the table, so this package imports no device library at import time. The live object
is `live.Inputs`.
"""
