"""Training subpackage: data preparation, training loops, presets, evaluation (imports models only)."""
