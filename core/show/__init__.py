"""What is shown, without Streamlit: Plotly charts, small pictures from arrays, and the plain-Keras
script a run exports."""
