"""Candidate pools C_u: which base recommender ranks them (``policy``, torch-free) and the
ranking itself (``ranking``, RecBole and torch, imported only when a run gets there)."""

from .policy import BaseModelPlan, plan_base_model

__all__ = ["BaseModelPlan", "plan_base_model"]
