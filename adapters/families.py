"""Where each wrappable model produces its final user/item representations (a registry by name).

The adapter needs three things from a base model: all users' and all items' final
representations (scores are their inner products), the model's own auxiliary losses, and how the
model reduces its BPR loss over a batch. Registering another model of the family is one entry.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch

from llmaug.errors import ModelError

from recbole.utils import InputType, ModelType


def _lookup_representations(model):
    """Embedding-lookup models (BPR): get_user_embedding / get_item_embedding of every id."""
    device = model.device if isinstance(model.device, torch.device) else torch.device(model.device)
    users = model.get_user_embedding(torch.arange(model.n_users, device=device))
    items = model.get_item_embedding(torch.arange(model.n_items, device=device))
    return users, items


def _graph_representations(model):
    """Graph models (LightGCN, NGCF, ...): forward() returns (all users, all items)."""
    out = model.forward()
    return out[0], out[1]


def _sgl_representations(model):
    return model.forward(model.train_graph)


def _no_auxiliary(model, user, pos, neg):
    return None


def _ego_regularisation(model, user, pos, neg):
    """reg_weight * EmbLoss on the batch's ego embeddings, as LightGCN/NGCF/SGL compute it."""
    if not all(hasattr(model, a) for a in ("reg_loss", "reg_weight", "user_embedding", "item_embedding")):
        return None
    reg = model.reg_loss(
        model.user_embedding(user),
        model.item_embedding(pos),
        model.item_embedding(neg),
        require_pow=getattr(model, "require_pow", False),
    )
    return model.reg_weight * reg


def _sgl_auxiliary(model, user, pos, neg):
    """SGL's own regularisation plus its self-supervised loss on the two perturbed graphs."""
    user_sub1, item_sub1 = model.forward(model.sub_graph1)
    user_sub2, item_sub2 = model.forward(model.sub_graph2)
    ssl = model.calc_ssl_loss(user, pos, user_sub1, user_sub2, item_sub1, item_sub2)
    return _ego_regularisation(model, user, pos, neg) + ssl


@dataclass(frozen=True)
class Family:
    name: str
    representations: Callable  # model -> (users [n_users, d], items [n_items, d])
    auxiliary_loss: Callable  # (model, user, pos, neg) -> tensor or None
    bpr_reduction: str = "mean"  # how the base model reduces its BPR loss: "mean" or "sum"


LOOKUP = Family("embedding lookup", _lookup_representations, _no_auxiliary)
GRAPH = Family("graph forward()", _graph_representations, _ego_regularisation)

REGISTRY: dict[str, Family] = {
    "BPR": LOOKUP,
    "LightGCN": GRAPH,
    "NGCF": GRAPH,
    # SGL sums its BPR loss over the batch (the reference SGL code does too); keep its scale so
    # the SSL weight keeps its meaning.
    "SGL": Family("SGL forward(train_graph)", _sgl_representations, _sgl_auxiliary, "sum"),
}

# Models that are general recommenders but do not score by user-item inner products.
NOT_INNER_PRODUCT = {
    "Pop": "it scores items by popularity counts; there are no user or item representations",
    "ItemKNN": "it scores by item-item neighbourhood similarity; there are no user representations",
    "EASE": "it scores with a closed-form item-item weight matrix; there are no user representations",
    "ADMMSLIM": "it scores with a learned item-item weight matrix; there are no user representations",
    "SLIMElastic": "it scores with a learned item-item weight matrix; there are no user representations",
    "NCEPLRec": "it is fitted in closed form, not trained with a loss",
    "Random": "it scores at random",
}


def family_of(model_class) -> Family:
    """The family of a RecBole model class, or a ModelError that says why it cannot be wrapped."""
    name = model_class.__name__
    for klass in model_class.__mro__:
        if klass.__name__ in REGISTRY:
            return REGISTRY[klass.__name__]
        if klass.__name__ in NOT_INNER_PRODUCT:
            raise ModelError(f"cannot adapt {name}: {NOT_INNER_PRODUCT[klass.__name__]}")
    if getattr(model_class, "type", None) != ModelType.GENERAL:
        raise ModelError(f"cannot adapt {name}: only general (user-item) recommenders can be adapted")
    if getattr(model_class, "input_type", None) != InputType.PAIRWISE:
        raise ModelError(
            f"cannot adapt {name}: it trains {getattr(model_class, 'input_type', None)}, and the "
            f"augmented BPR loss needs pairwise (user, positive, negative) batches"
        )
    if callable(getattr(model_class, "get_user_embedding", None)) and callable(
        getattr(model_class, "get_item_embedding", None)
    ):
        return LOOKUP
    params = [
        p for p in inspect.signature(model_class.forward).parameters.values()
        if p.name != "self" and p.default is inspect.Parameter.empty
    ]
    if not params:
        return GRAPH  # checked on a real forward() when the model is built
    raise ModelError(
        f"cannot adapt {name}: it exposes neither get_user_embedding/get_item_embedding nor a "
        f"forward() that returns all users' and all items' representations; register it in "
        f"llmaug.adapters.families.REGISTRY"
    )
