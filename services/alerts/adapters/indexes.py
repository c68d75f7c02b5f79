from services.alerts.adapters.store import ensure_indexes

__all__ = ["ensure_indexes"]
