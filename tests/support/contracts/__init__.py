"""Contract tests: one base class per port, run against every implementation of it."""
