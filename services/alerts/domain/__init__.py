"""The alerts service's pure logic (no I/O; time is always a parameter).

notifications (classify a status change, match subscription filters, dedup keys, relevance),
grouping (window decisions), silences (mutes and Japan-time quiet hours), reminders (repeat
interval), payloads (the Standard Webhooks body), signing (signatures), retry (schedule,
Retry-After), endpoint_health (when an endpoint is disabled), ssrf (refused target addresses).
"""
