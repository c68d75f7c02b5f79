"""The alerts service layer: use cases talking only to ports (services/alerts/ports.py) and the
domain. Raises service errors (errors.py), never HTTP problems.

status_changes  a status change → notifications (dedup, filters), the KPI's latest state
batching        grouping windows → deliveries; silences; reminders; half-made recovery
delivery        the worker that leases, signs, sends, logs and schedules retries
gauges          queue and subscription gauges for Prometheus
subscriptions   subscription administration: targets, secrets, delivery log, redelivery
silences        silence administration
documents       notifications and KPI states as their stores keep them
policy          how notifications become deliveries; errors: what the use cases refuse
"""
