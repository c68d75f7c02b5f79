"""The demo: a realistic reporting feed for the whole catalogue (`shinchoku simulate`) and a local
webhook receiver, run together with the stack by `make demo`.

- scenario.py  pure: who reports what and when, and the status each subject is meant to end in
- simulate.py  the feed: the scenario posted through the ingest API, time compressed
- receiver.py  a webhook endpoint that verifies Standard Webhooks signatures and prints deliveries
"""
