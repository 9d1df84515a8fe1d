"""Streamlit helpers the pages share: engine (cached engine objects), session (shared keys),
sidebar (the config's widgets), notes (words about what is shown), runs, importer, sweep_view."""
