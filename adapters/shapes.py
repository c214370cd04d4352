"""Where a base model's representations can be replaced by h = e + w1 * sum_k f_k (a registry by name).

The adapter never re-implements a model's loss. It puts h where the model's own code reads its
representations, so the model's ``calculate_loss`` (auxiliary terms, reduction and all),
``predict`` and ``full_sort_predict`` run unchanged on h. Two places exist in RecBole's general
recommenders:

- ``forward``: graph models whose ``forward()`` returns all users' and all items' final
  representations (LightGCN, NGCF, SGL, NCL, DGCF, SpectralCF). h is added to what it returns.
- ``tables``: models that look their representations up in id embedding tables (BPR, ENMF,
  SimpleX, LINE, ConvNCF, NeuMF, NNCF). The tables are wrapped so a lookup, and ``.weight``,
  return h.

The LLM-made triplets need the model's score of (user, item): the inner product of the step's
final representations for ``forward`` models, the model's own ``predict`` (or raw score) for
``tables`` models.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from llmaug.errors import ModelError

from recbole.utils import ModelType

FORWARD, TABLES = "forward", "tables"


def _predict(model, users, items):
    from recbole.data.interaction import Interaction

    return model.predict(Interaction({model.USER_ID: users, model.ITEM_ID: items}))


def _raw_forward(model, users, items):
    """Models whose ``predict`` squashes with a sigmoid: BPR needs the logit."""
    return model.forward(users, items)


@dataclass(frozen=True)
class Shape:
    """How one model class exposes its representations to the adapter."""

    substitute: str  # FORWARD or TABLES
    # TABLES: (user table, item table) attribute pairs that hold the representations
    tables: tuple[tuple[str, str], ...] = ()
    # FORWARD: the arguments forward() takes to produce the training-graph representations
    forward_args: Callable = lambda model: ()
    # TABLES: score(model, users, items) for the LLM-made triplets
    score: Callable = _predict
    # the base loss sums over the batch (each triplet weighs 1) instead of averaging (1 / B)
    sums_over_batch: bool = False
    # the base loss is RecBole's BPRLoss (mean over the batch's (u, i+, i-)) plus terms that do not
    # score triplets: pruning can rank the batch's own triplets with the LLM's (Eq. 7 over E u E_A)
    bpr_loss: bool = False

    @property
    def description(self) -> str:
        if self.substitute == FORWARD:
            return "its final representations: h is added to what forward() returns"
        return "its id embedding tables " + ", ".join(f"`{u}`/`{i}`" for u, i in self.tables) + " return h"

    @property
    def triplet_score(self) -> str:
        if self.substitute == FORWARD:
            return "h_u · h_i from the step's forward()"
        return "its forward() (the logit)" if self.score is _raw_forward else "its predict()"


def forward_shape(forward_args: Callable = lambda model: (), sums_over_batch: bool = False, bpr_loss: bool = False) -> Shape:
    return Shape(FORWARD, forward_args=forward_args, sums_over_batch=sums_over_batch, bpr_loss=bpr_loss)


def tables_shape(*tables: tuple[str, str], score: Callable = _predict, bpr_loss: bool = False) -> Shape:
    return Shape(TABLES, tables=tables or (("user_embedding", "item_embedding"),), score=score, bpr_loss=bpr_loss)


REGISTRY: dict[str, Shape] = {
    # calculate_loss = BPRLoss(pos, neg) [+ an L2 term on the batch's embeddings, which scores no triplet]
    "BPR": tables_shape(bpr_loss=True),
    "LightGCN": forward_shape(bpr_loss=True),
    "NGCF": forward_shape(bpr_loss=True),
    # SGL sums its BPR loss over the batch; the LLM triplets weigh what its own triplets weigh.
    "SGL": forward_shape(lambda model: (model.train_graph,), sums_over_batch=True),
    "NCL": forward_shape(),
    "DGCF": forward_shape(),
    "SpectralCF": forward_shape(),
    "LINE": tables_shape(),
    "ENMF": tables_shape(),
    "SimpleX": tables_shape(("user_emb", "item_emb")),
    "ConvNCF": tables_shape(),
    "NeuMF": tables_shape(("user_mf_embedding", "item_mf_embedding"), ("user_mlp_embedding", "item_mlp_embedding"),
                          score=_raw_forward),
    "NNCF": tables_shape(score=_raw_forward),
}

_AUTOENCODER = ("it is an autoencoder that scores by decoding a user's interaction row; items have no "
                "representation for their attributes to join")
_DIFFUSION = "it denoises users' interaction rows by diffusion; there are no user or item representations"
_ITEM_ITEM = "it is fitted without gradient training on an item-item weight matrix; there are no user representations"

# Every other general recommender RecBole 1.2.1 ships, with why it cannot take h.
REFUSED: dict[str, str] = {
    "Pop": "it scores items by popularity counts; there are no user or item representations",
    "Random": "it scores at random; there is nothing to train",
    "ItemKNN": "it scores by item-item neighbourhood similarity, fitted without gradient training",
    "AsymKNN": "it scores by asymmetric item/user neighbourhood similarity, fitted without gradient training",
    "EASE": "it scores with a closed-form item-item weight matrix; there are no user representations",
    "SLIMElastic": _ITEM_ITEM,
    "ADMMSLIM": _ITEM_ITEM,
    "NCEPLRec": "it is fitted in closed form, not trained with a loss",
    "MultiVAE": _AUTOENCODER,
    "MultiDAE": _AUTOENCODER,
    "MacridVAE": _AUTOENCODER,
    "RecVAE": _AUTOENCODER,
    "RaCT": _AUTOENCODER,
    "CDAE": _AUTOENCODER,
    "DiffRec": _DIFFUSION,
    "LDiffRec": _DIFFUSION,
    "DMF": "it encodes users and items from interaction-matrix rows and columns with MLPs; there is no id "
           "representation for features to join",
    "FISM": "it represents a user only by the items the user interacted with; there is no user representation "
            "for the user profile",
    "NAIS": "it represents a user only by the items the user interacted with; there is no user representation "
            "for the user profile",
    "GCMC": "it encodes one-hot node inputs and scores with a bilinear rating-class decoder; there is no id "
            "representation or inner-product score",
}


def shape_of(model_class: type) -> Shape:
    """The shape of a RecBole model class, or a ModelError that says in one line why it has none.

    A subclass of a registered or refused model inherits its entry. An unregistered general
    model whose forward() takes no argument is taken as a ``forward`` model (checked on a real
    forward() when it is built); any other is refused with how to register it.
    """
    name = model_class.__name__
    for klass in model_class.__mro__:
        if klass.__name__ in REGISTRY:
            return REGISTRY[klass.__name__]
        if klass.__name__ in REFUSED:
            raise ModelError(f"cannot adapt {name}: {REFUSED[klass.__name__]}")
    if getattr(model_class, "type", None) != ModelType.GENERAL:
        kind = getattr(model_class, "type", None)
        plain = {ModelType.SEQUENTIAL: " (train it plain with --base, on a split in time order: --split-method leave_one_out --split-order time)",
                 ModelType.CONTEXT: " (train it plain with --base: it reads the LLM's attributes and profile fields as features)"}.get(kind, "")
        raise ModelError(f"cannot adapt {name}: only general (user-item) recommenders can be adapted{plain}")
    required = [
        p for p in inspect.signature(model_class.forward).parameters.values()
        if p.name != "self" and p.default is inspect.Parameter.empty
    ]
    if not required:
        return forward_shape()
    raise ModelError(
        f"cannot adapt {name}: llmaug does not know where its representations are; register it "
        f"(docs/ADAPTING.md): llmaug.adapters.REGISTRY[{name!r}] = tables_shape(...) or forward_shape(...)"
    )

