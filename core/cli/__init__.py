"""`python -m core`: one module per command (train and runs, classify, sweep, data), the shared
console helpers, and main(), which turns every PlaygroundError into one line and exit 1."""
