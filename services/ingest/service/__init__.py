"""The ingest service layer: use cases that talk only to ports (services/ingest/ports.py) and
the domain, and raise service errors (errors.py), never HTTP problems."""
