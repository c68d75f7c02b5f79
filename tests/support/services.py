"""Moved to harness/services.py (benchmarks use it too, and must not import tests.*).

These names stay importable from here only for the test modules other #15 branches are editing
(tests/integration/test_ingest_ownership.py, test_ingest_restart.py); once those import
harness.services, this module goes.
"""

from harness.services import ROOT as ROOT
from harness.services import RunningService as RunningService
from harness.services import service_environment as service_environment
from harness.services import start_service as start_service
from harness.services import stop_service as stop_service
from harness.services import wait_ready as wait_ready
