"""`python -m ibfp_cli` runs the `ibfp` command line."""

from .cli.app import run

if __name__ == "__main__":
    run()
