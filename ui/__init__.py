"""UI helpers shared by the pages (Streamlit code; the engine stays in core/)."""
