"""``adapt(ModelClass)``: a RecBole model class trained on LLM-augmented data, its own objective kept.

The adapted class subclasses the base model, so the base model builds (and initialises) itself
exactly as it would alone; then the adapter adds its submodules and puts h = e + w1 * sum_k f_k
where the model reads its representations (see ``shapes``). The base model's own
``calculate_loss``, ``predict`` and ``full_sort_predict`` therefore run on h, unchanged, and
RecBole's own Trainer (NCL's E-step included) trains, evaluates, early-stops and checkpoints it.
``calculate_loss`` adds LLMRec's terms to the model's loss: BPR on the LLM-made triplets with
noise pruning (§3.3), the MAE reconstruction loss and the adapter's weight decay. Pruning as
Eq. 7 publishes it ranks the batch's own triplets with the LLM's (E u E_A): for models whose own
loss is RecBole's BPR mean (``Shape.bpr_loss``), that mean is then replaced by the pruned one.

With every LLMRec part off the adapter installs nothing and draws no random number, so the
adapted model trains exactly as the base model does (the support-matrix test checks this).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmaug.errors import ModelError

from .augedges import load_augmented_edges, sample_edges
from .features import FeatureEncoder, load_side_features, normalized_adjacency
from .losses import bpr_per_triplet, pruned
from .mae import MaskedFeatureAutoencoder
from .settings import ALL_TRIPLETS, AdapterSettings
from .sequences import training_sequences
from .shapes import FORWARD, SEQUENCE, Shape, shape_of

log = logging.getLogger(__name__)


class Adapter(nn.Module):
    """The adapter's own state: feature encoder, MAE, augmented edges, knobs, the step's terms."""

    def __init__(self, config, dataset, dim: int):
        super().__init__()
        self.settings = s = AdapterSettings.from_config(config)
        features = load_side_features(config, dataset, s.features, s.feature_fields) if s.features else []
        for f in features:
            if not f.present.any():  # e.g. every record of this feature failed
                log.warning("feature %r has no non-empty row in this dataset: left out", f.name)
        features = [f for f in features if f.present.any()]
        self.encoder = self.mae = None
        if features and (s.feature_weight > 0 or s.masked_features):
            adjacency = normalized_adjacency(dataset) if s.propagation_layers > 0 else None
            self.encoder = FeatureEncoder(
                features, dataset.user_num, dataset.item_num, dim,
                s.feature_dropout, s.propagation_layers, adjacency, s.feature_rank,
            )
            masked = [f for f in features if f.name in s.masked_features]
            if masked:
                self.mae = MaskedFeatureAutoencoder(
                    masked, self.encoder, adjacency, s.propagation_layers, s.mask_ratio, s.mae_gamma, s.mask_token,
                    in_forward=s.mask_in_forward,
                )
        edges = (
            load_augmented_edges(config, dataset, s.augedge_file)
            if s.aug_edge_ratio > 0 else torch.zeros(0, 3, dtype=torch.long)
        )
        self.register_buffer("aug_edges", edges, persistent=False)
        self._terms = None
        self._in_step = False

    @property
    def substitutes(self) -> bool:
        """Whether h differs from e at all (features present and w1 > 0)."""
        return self.encoder is not None and self.settings.feature_weight > 0

    def terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(w1 * user term [n_users, d], w1 * item term [n_items, d]).

        Computed once per training step (one dropout mask, and with ``llmaug_mask_in_forward`` one
        feature mask, for every lookup of the step) and once per evaluation; outside a step in
        training mode, afresh on every call.
        """
        if self._terms is not None:
            return self._terms
        if self._in_step and self.training and self.mae is not None and self.settings.mask_in_forward:
            users, items = self.encoder(self.mae.masked_projection(self.encoder))
        else:
            users, items = self.encoder()
        w = self.settings.feature_weight
        terms = (w * users, w * items)
        if self._in_step or not self.training:
            self._terms = terms
        return terms

    def user_term(self) -> torch.Tensor:
        return self.terms()[0]

    def item_term(self) -> torch.Tensor:
        return self.terms()[1]

    def begin_step(self) -> None:
        self._terms, self._in_step = None, True

    def end_step(self) -> None:
        self._terms, self._in_step = None, False
        if self.mae is not None:
            self.mae.step = None

    def forget(self) -> None:
        """Parameters or mode changed: cached evaluation terms are stale."""
        self._terms = None

    def regularisation(self) -> torch.Tensor | None:
        """w2 * ||adapter parameters||^2 (the base model keeps its own regulariser)."""
        params = list(self.parameters())
        if self.settings.weight_decay <= 0 or not params:
            return None
        return self.settings.weight_decay * sum(p.pow(2).sum() for p in params)


class FeatureEmbedding(nn.Embedding):
    """An id embedding table whose rows read h = e + w1 * f, for lookups and ``.weight`` alike.

    Swapped in as the class of the model's own table, so the parameter, its name in the
    state_dict and its place in the optimiser stay the base model's. A lookup gathers only the
    rows it needs from the adapter's term.
    """

    term: Callable[[], torch.Tensor]  # the adapter's user_term or item_term

    def _term(self) -> torch.Tensor:
        term = self.term()
        if self.padding_idx is None:
            return term
        # The padding row stays zero: sequences (and SimpleX's histories) are padded with it, and a
        # model may sum or score every position (STAMP averages them; a CE loss scores item 0 too).
        return term.index_fill(0, torch.tensor([self.padding_idx], device=term.device), 0.0)

    @property
    def weight(self) -> torch.Tensor:
        return self._parameters["weight"] + self._term()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        own = F.embedding(ids, self._parameters["weight"], self.padding_idx, self.max_norm, self.norm_type,
                          self.scale_grad_by_freq, self.sparse)
        return own + self._term()[ids]


class AdapterMixin:
    """Mixed in before a RecBole model class by :func:`adapt`; see the module docstring."""

    llmaug_shape: Shape

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self._llmaug_h = None  # (users, items) the step's first forward() returned
        if self.llmaug_shape.substitute == FORWARD:
            dim = self._llmaug_forward_dim()
            self.llmaug = Adapter(config, dataset, dim)
        else:
            tables = self._llmaug_tables()
            self.llmaug = Adapter(config, dataset, tables[0][1].embedding_dim)
            if self.llmaug.substitutes:
                for user_table, item_table in tables:
                    for table, term in ((user_table, self.llmaug.user_term), (item_table, self.llmaug.item_term)):
                        if table is not None:  # a sequential model has no user table
                            table.__class__ = FeatureEmbedding
                            table.term = term
        settings = self.llmaug.settings
        if settings.prune_over == ALL_TRIPLETS and settings.prune_ratio > 0 and not self.llmaug_shape.bpr_loss:
            raise ModelError(
                f"cannot prune {type(self).__name__}'s own triplets (llmaug_prune_over: {ALL_TRIPLETS}): its loss is not "
                f"RecBole's per-triplet BPR mean, which that pruning ranks and replaces; use llmaug_prune_over: llm_triplets"
            )

    # -- where h goes ------------------------------------------------------------------------

    def _llmaug_forward_dim(self) -> int:
        # One probe forward, without disturbing the RNG streams base and adapted runs share.
        # RecBole builds graph buffers on config["device"] but leaves the parameters on the CPU
        # until the caller's .to(device): move first, or the probe mixes devices on a GPU.
        self.to(self.device)
        args = self.llmaug_shape.forward_args(self)
        devices = [self.device] if torch.device(self.device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            out = super().forward(*args)
        ok = (
            isinstance(out, (tuple, list)) and len(out) >= 2
            and all(isinstance(t, torch.Tensor) and t.dim() == 2 for t in out[:2])
            and out[0].shape[0] == self.n_users and out[1].shape[0] == self.n_items
            and out[0].shape[1] == out[1].shape[1]
        )
        if not ok:
            raise ModelError(
                f"cannot adapt {type(self).__name__}: its forward() does not return [n_users, d] and "
                f"[n_items, d] representations; register it with tables_shape(...) (docs/ADAPTING.md)"
            )
        return int(out[0].shape[1])

    def _llmaug_tables(self) -> list[tuple[nn.Embedding, nn.Embedding]]:
        tables, dims = [], set()
        for user_name, item_name in self.llmaug_shape.tables:
            pair = getattr(self, user_name, None) if user_name else None, getattr(self, item_name, None)
            counts = (getattr(self, "n_users", None), self.n_items)
            named = (user_name, item_name)
            if not all(type(t) is nn.Embedding and t.num_embeddings == n for t, n, name in zip(pair, counts, named) if name):
                wanted = f"tables of its {self.n_users} users and {self.n_items} items" if user_name else f"a table of its {self.n_items} items"
                raise ModelError(
                    f"cannot adapt {type(self).__name__}: {'/'.join(filter(None, named))} are not nn.Embedding {wanted}"
                )
            tables.append(pair)
            dims |= {t.embedding_dim for t in pair if t is not None}
        if len(dims) != 1:
            names = ", ".join(f"{u}/{i}" for u, i in self.llmaug_shape.tables)
            raise ModelError(
                f"cannot adapt {type(self).__name__}: its tables {names} have different widths {sorted(dims)}; "
                f"one feature term is added to all of them, so give them one embedding size"
            )
        return tables

    # -- what RecBole's Trainer calls ------------------------------------------------------

    def calculate_loss(self, interaction):
        self.llmaug.begin_step()
        self._llmaug_h = None
        try:
            loss = super().calculate_loss(interaction)
            extra = self._llmaug_loss(interaction)
        finally:
            self.llmaug.end_step()
            self._llmaug_h = None
        if extra is None:
            return loss
        # A model that returns its loss in parts (NCL) keeps them; RecBole's Trainer sums them.
        return (*loss, extra) if isinstance(loss, tuple) else loss + extra

    def _llmaug_loss(self, interaction) -> torch.Tensor | None:
        """LLMRec's terms: pruned BPR on the LLM triplets (Eqs. 6-7), lambda * L_FR (Eq. 9), w2 decay."""
        adapter, settings = self.llmaug, self.llmaug.settings
        batch_size = len(interaction)
        parts = []
        edges = sample_edges(adapter.aug_edges, round(settings.aug_edge_ratio * batch_size))
        if settings.prune_over == ALL_TRIPLETS and settings.prune_ratio > 0:
            parts.append(self._llmaug_pruned_over_all(interaction, edges))
        elif len(edges):
            pos, neg = self._llmaug_scores(edges)
            total = pruned(bpr_per_triplet(pos, neg), settings.prune_ratio, settings.prune_drops).sum()
            # Each LLM triplet weighs what one of the batch's own triplets weighs in the base loss.
            parts.append(total if self.llmaug_shape.sums_over_batch else total / batch_size)
        if adapter.mae is not None:
            parts.append(settings.mae_weight * adapter.mae.loss(adapter.encoder))
        decay = adapter.regularisation()
        if decay is not None:
            parts.append(decay)
        return sum(parts) if parts else None

    def _llmaug_pruned_over_all(self, interaction, edges: torch.Tensor) -> torch.Tensor:
        """Eq. 7 over E u E_A: the batch's own triplets and the LLM's, ranked together, the kept ones
        averaged (as the reference's ``prune_loss`` does) in place of the model's own BPR mean,
        which is subtracted here: the model's other terms (its L2) stay as the model computes them."""
        from recbole.model.loss import BPRLoss

        own = torch.stack([interaction[self.USER_ID], interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]], dim=1)
        pos, neg = self._llmaug_scores(torch.cat([own, edges]))
        settings = self.llmaug.settings
        kept = pruned(bpr_per_triplet(pos, neg), settings.prune_ratio, settings.prune_drops)
        return kept.mean() - BPRLoss()(pos[: len(own)], neg[: len(own)])

    def _llmaug_scores(self, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's scores of (u, i+) and (u, i-) for the LLM triplets, on h."""
        user, pos, neg = edges.unbind(dim=1)
        if self.llmaug_shape.substitute == FORWARD:
            users, items = self._llmaug_h or self.forward(*self.llmaug_shape.forward_args(self))[:2]
            u = users[user]
            return (u * items[pos]).sum(dim=1), (u * items[neg]).sum(dim=1)
        scores = self.llmaug_shape.score(self, torch.cat([user, user]), torch.cat([pos, neg]))
        return scores[: len(user)], scores[len(user):]

    # -- keep the evaluation cache honest --------------------------------------------------

    def train(self, mode: bool = True):
        self.llmaug.forget()
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        self.llmaug.forget()
        return super().load_state_dict(state_dict, strict=strict, **kwargs)


class ForwardAdapterMixin(AdapterMixin):
    """For ``forward`` models: h is added to the representations forward() returns."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        if self.llmaug.substitutes:
            users, items = self.llmaug.terms()
            out = (out[0] + users, out[1] + items, *out[2:])
        if self.llmaug._in_step and self._llmaug_h is None:
            self._llmaug_h = (out[0], out[1])
        return out


class SequenceAdapterMixin(AdapterMixin):
    """For sequential models: the item table returns h_i, and the representation forward() gives a
    sequence gets w1 * f_u of the sequence's user. forward() takes no user id, so the user ids of
    the batch being scored are set around each call of the model's own methods. The LLM triplets
    are scored on each user's training sequence (``sequences``)."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self._llmaug_users = None  # the user of each sequence forward() is encoding now
        width = config["MAX_ITEM_LIST_LENGTH"]
        sequences, lengths = training_sequences(dataset, width)
        self.register_buffer("llmaug_sequences", sequences, persistent=False)
        self.register_buffer("llmaug_sequence_lengths", lengths, persistent=False)
        edges = self.llmaug.aug_edges
        if len(edges):
            scored = lengths[edges[:, 0]] > 0
            if not scored.all():
                log.warning("%d of %d LLM triplets left out: their users have no training sequence (a single "
                            "training interaction predicts nothing)", int((~scored).sum()), len(edges))
                self.llmaug.aug_edges = edges[scored]

    @contextlib.contextmanager
    def _llmaug_users_are(self, users: torch.Tensor):
        previous, self._llmaug_users = self._llmaug_users, users
        try:
            yield
        finally:
            self._llmaug_users = previous

    def forward(self, item_seq, item_seq_len, *args, **kwargs):
        out = super().forward(item_seq, item_seq_len, *args, **kwargs)
        if self.llmaug.substitutes and self._llmaug_users is not None:
            out = out + self.llmaug.user_term()[self._llmaug_users]
        return out

    def calculate_loss(self, interaction):
        with self._llmaug_users_are(interaction[self.USER_ID]):
            return super().calculate_loss(interaction)

    def predict(self, interaction):
        with self._llmaug_users_are(interaction[self.USER_ID]):
            return super().predict(interaction)

    def full_sort_predict(self, interaction):
        with self._llmaug_users_are(interaction[self.USER_ID]):
            return super().full_sort_predict(interaction)

    def _llmaug_scores(self, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        user, pos, neg = edges.unbind(dim=1)
        with self._llmaug_users_are(user):
            sequences = self.forward(self.llmaug_sequences[user], self.llmaug_sequence_lengths[user])
        items = getattr(self, self.llmaug_shape.tables[0][1])(torch.cat([pos, neg]))
        return (sequences * items[: len(user)]).sum(dim=1), (sequences * items[len(user):]).sum(dim=1)


_ADAPTED: dict[type, type] = {}


def adapt(model_class: type) -> type:
    """The adapted subclass of a RecBole model class (ModelError if it cannot be adapted)."""
    if isinstance(model_class, type) and issubclass(model_class, AdapterMixin):
        return model_class
    shape = shape_of(model_class)
    if model_class not in _ADAPTED:
        mixin = {FORWARD: ForwardAdapterMixin, SEQUENCE: SequenceAdapterMixin}.get(shape.substitute, AdapterMixin)
        _ADAPTED[model_class] = type(
            model_class.__name__,  # RecBole names logs, checkpoints and trainers after the class
            (mixin, model_class),
            {
                "llmaug_shape": shape,
                "__module__": __name__,
                "__qualname__": f"adapt({model_class.__name__})",
                "__doc__": f"{model_class.__name__} adapted by llmaug: {__doc__.splitlines()[0]}",
            },
        )
    return _ADAPTED[model_class]
