"""Contract tests of ports: base classes, subclassed per implementation and tier."""
