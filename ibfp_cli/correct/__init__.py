"""`ibfp correct`: a page in the browser to see every box, fix the doubtful ones, retrack and save.

The state and the frame server are plain Python (`session`, `frames`); only `server` needs
the `ui` extra (FastAPI and uvicorn), so nothing here imports them on `import ibfp_cli`.
"""
