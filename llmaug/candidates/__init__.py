"""Candidate pools C_u: which base recommender ranks them (``policy``, torch-free) and the
ranking itself (``ranking``, RecBole and torch, imported only when a run gets there)."""

from .policy import ADAM, BaseModelPlan, plan_base_model

__all__ = ["ADAM", "BaseModelPlan", "plan_base_model"]
