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
- ``sequence``: sequential models that encode a user as the sequence of the user's items
  (SASRec, GRU4Rec, NARM, FDSA...). Their item table returns h_i = e_i + w1 * f_i, and the
  sequence representation forward() returns gets the user's term w1 * f_u (the user profile).

The LLM-made triplets need the model's score of (user, item): the inner product of the step's
final representations for ``forward`` models, the model's own ``predict`` (or raw score) for
``tables`` models, and for ``sequence`` models the inner product of the user's training-sequence
representation with h_i, as the models score their own targets.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from llmaug.errors import ModelError

from recbole.utils import ModelType

FORWARD, TABLES, SEQUENCE = "forward", "tables", "sequence"


def _predict(model, users, items):
    from recbole.data.interaction import Interaction

    return model.predict(Interaction({model.USER_ID: users, model.ITEM_ID: items}))


def _raw_forward(model, users, items):
    """Models whose ``predict`` squashes with a sigmoid: BPR needs the logit."""
    return model.forward(users, items)


@dataclass(frozen=True)
class Shape:
    """How one model class exposes its representations to the adapter."""

    substitute: str  # FORWARD, TABLES or SEQUENCE
    # TABLES: (user table, item table) attribute pairs that hold the representations; SEQUENCE: (None, item table)
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
        if self.substitute == SEQUENCE:
            return (f"its item table `{self.tables[0][1]}` returns h_i; the user's term is added to the "
                    f"sequence representation forward() returns")
        return "its id embedding tables " + ", ".join(f"`{u}`/`{i}`" for u, i in self.tables) + " return h"

    @property
    def triplet_score(self) -> str:
        if self.substitute == FORWARD:
            return "h_u · h_i from the step's forward()"
        if self.substitute == SEQUENCE:
            return "forward() of the user's training sequence · h_i"
        return "its forward() (the logit)" if self.score is _raw_forward else "its predict()"


def forward_shape(forward_args: Callable = lambda model: (), sums_over_batch: bool = False, bpr_loss: bool = False) -> Shape:
    return Shape(FORWARD, forward_args=forward_args, sums_over_batch=sums_over_batch, bpr_loss=bpr_loss)


def tables_shape(*tables: tuple[str, str], score: Callable = _predict, bpr_loss: bool = False) -> Shape:
    return Shape(TABLES, tables=tables or (("user_embedding", "item_embedding"),), score=score, bpr_loss=bpr_loss)


def sequence_shape(item_table: str = "item_embedding") -> Shape:
    return Shape(SEQUENCE, tables=((None, item_table),))


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
    # Sequential: forward(item_seq, item_seq_len) returns one [B, d] representation per sequence, and
    # the model scores an item by its inner product with the item table's row.
    **{name: sequence_shape() for name in ("SASRec", "GRU4Rec", "NARM", "STAMP", "SRGNN", "GCSAN", "LightSANs",
                                          "SASRecF", "FDSA", "GRU4RecF")},
}

_AUTOENCODER = ("it is an autoencoder that scores by decoding a user's interaction row; items have no "
                "representation for their attributes to join")
_DIFFUSION = "it denoises users' interaction rows by diffusion; there are no user or item representations"
_KNOWLEDGE_GRAPH = "it needs a knowledge graph (.kg and .link files), which llmaug does not write"
_ITEM_ITEM = "it is fitted without gradient training on an item-item weight matrix; there are no user representations"

_CONTEXT_AWARE = ("a context-aware (CTR) model learns from labelled rows and already reads the LLM's attributes and "
                  "profile fields as features: train it plain with --base")

# Every other general and sequential recommender RecBole 1.2.1 ships, with why it cannot take h.
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
    # Sequential
    "BERT4Rec": "it learns by masked-item prediction, one output per position of the sequence, not one representation "
                "per sequence for the LLM triplets and the user profile",
    "NextItNet": "its forward() takes the sequence without its length, a signature llmaug does not score the LLM "
                 "triplets with (not registered yet)",
    "CORE": "its forward() takes the item table as an argument and it scores by temperature-scaled cosine, not the "
            "inner product the LLM triplets are scored by",
    "SINE": "it represents a user by several interest vectors, not one sequence representation",
    "RepeatNet": "it scores a mixture of repeating an item of the sequence and exploring the others, not an inner "
                 "product with an item table",
    "GRU4RecCPR": "it scores with a softmax over several context partitions (CPR), not one sequence representation",
    "SASRecCPR": "it scores with a softmax over several context partitions (CPR), not one sequence representation",
    "S3Rec": "it needs a self-supervised pre-training stage on item attributes before fine-tuning, and llmaug train "
             "runs one stage",
    "FEARec": "its frequency-domain contrastive loss draws, per row, another training sequence with the same target; "
              "not checked with the adapter yet",
    "DIN": "it scores labelled (user, item) rows for click-through rate, pointwise; there is no ranking loss for the "
           "LLM triplets to join",
    "DIEN": "it scores labelled (user, item) rows for click-through rate, pointwise; there is no ranking loss for the "
            "LLM triplets to join",
    **{name: "its forward() takes the user id beside the sequence (a user table of its own), a shape llmaug does not "
             "register yet" for name in ("Caser", "HGN", "HRM", "NPE", "SHAN", "FOSSIL", "FPMC", "TransRec")},
    **{name: _KNOWLEDGE_GRAPH for name in ("KSR", "GRU4RecKG")},
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
    kind = getattr(model_class, "type", None)
    if kind == ModelType.CONTEXT:
        raise ModelError(f"cannot adapt {name}: {_CONTEXT_AWARE}")
    if kind == ModelType.KNOWLEDGE:
        raise ModelError(f"cannot adapt {name}: {_KNOWLEDGE_GRAPH}")
    if kind != ModelType.GENERAL:
        raise ModelError(
            f"cannot adapt {name}: llmaug does not know where its representations are; train it plain with --base, "
            f"or register it (docs/ADAPTING.md)"
        )
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

