"""The plan as data: measures, numeric KPIs and dated milestones of the 2022 Priority Policy
Program, with their sources in the plan text. See `plan-2022.yaml` and `ministries.yaml`."""

from shared.catalogue.model import Catalogue, Kpi, Measure, Milestone, Ministry
from shared.catalogue.validate import CatalogueError, Problem, load_catalogue, validate_files

__all__ = [
    "Catalogue",
    "CatalogueError",
    "Kpi",
    "Measure",
    "Milestone",
    "Ministry",
    "Problem",
    "load_catalogue",
    "validate_files",
]
