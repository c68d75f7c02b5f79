from services.alerts.adapters.mongo import ensure_indexes

__all__ = ["ensure_indexes"]
