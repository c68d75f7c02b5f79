"""Moved to harness/webhooks.py (benchmarks use it too, and must not import tests.*).

These names stay importable from here only for the test modules other #15 branches are editing
(tests/integration/test_alerts_api.py, test_alerts_pipeline.py); once those import
harness.webhooks, this module goes.
"""

from harness.webhooks import ReceivedWebhook as ReceivedWebhook
from harness.webhooks import webhook_receiver as webhook_receiver
