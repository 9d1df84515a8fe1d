"""Keras itself: the model a config describes, training with progress and Stop, evaluation,
explanations, and how fast it all goes here (pace)."""
