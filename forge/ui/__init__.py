"""`forge ui`: the local web dashboard (Streamlit) over the registry and the run storage."""
