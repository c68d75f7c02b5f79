"""Drives the real local stack from outside the services: where it listens (stack), the services
as processes (services) and a webhook receiver (webhooks). The e2e tests and the benchmarks
both use it; it imports nothing from tests/."""
