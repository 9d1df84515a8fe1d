"""The engine: everything but the pages, importable without Streamlit (and mostly without Keras).

Floors, each importing only from the ones below it (tests/test_layers.py keeps them honest):
errors, home, files, runtime -> spec -> data, store -> learn -> run -> sweeps -> workspace ->
show -> cli. See the README's "Where things live".
"""
