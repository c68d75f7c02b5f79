from services.kpi.adapters.repository import ensure_indexes

__all__ = ["ensure_indexes"]
