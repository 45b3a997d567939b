"""`python -m ibfp_cli` runs the `ibfp` command line."""

from .cli import app

if __name__ == "__main__":
    app(prog_name="ibfp")
