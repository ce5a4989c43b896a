"""``python -m stella_oci`` runs the CLI."""

from stella_oci.cli import run

run()
