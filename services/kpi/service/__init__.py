"""The kpi service layer: its use cases, talking to the ports (services/kpi/ports.py) and the
domain. No Kafka, MongoDB or HTTP here (tests/unit/test_layer_boundaries.py)."""
