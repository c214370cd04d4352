"""``adapt(ModelClass)``: a RecBole model class trained on LLM-augmented data, RecBole unchanged.

The adapted class subclasses the base model, so the base model builds (and initialises) itself
exactly as it would alone, then the adapter adds its own submodules. It overrides only the
three methods RecBole's Trainer calls -- ``calculate_loss``, ``predict``, ``full_sort_predict``
-- so RecBole's own Trainer trains it, evaluates it with full ranking, early-stops it on the
validation split and checkpoints it (the adapter's parameters are in ``state_dict``).
"""

from __future__ import annotations

import logging

import torch
import torch.nn as nn

from llmaug.errors import ModelError

from .augedges import load_augmented_edges, sample_edges
from .families import Family, family_of
from .features import FeatureEncoder, load_side_features, normalized_adjacency
from .losses import bpr_per_triplet, pruned_mean, pruned_mean_of_part
from .mae import MaskedFeatureAutoencoder
from .settings import AdapterSettings

log = logging.getLogger(__name__)


class Adapter(nn.Module):
    """The adapter's own state: feature encoder, MAE, augmented edges, knobs."""

    def __init__(self, config, dataset, dim: int, device):
        super().__init__()
        self.settings = s = AdapterSettings.from_config(config)
        features = load_side_features(config, dataset, s.features) if s.features else []
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
                    masked, self.encoder, adjacency, s.propagation_layers, s.mask_ratio, s.mae_gamma, s.mask_token
                )
        edges = (
            load_augmented_edges(config, dataset, s.augedge_file)
            if s.aug_edge_ratio > 0 else torch.zeros(0, 3, dtype=torch.long)
        )
        self.register_buffer("aug_edges", edges, persistent=False)

    def feature_terms(self, training: bool):
        """(user_term, item_term, reconstruction loss or None); the MAE runs only in training."""
        user_term, item_term = self.encoder()
        fr_loss = self.mae.loss(self.encoder) if training and self.mae is not None else None
        return user_term, item_term, fr_loss

    def l2(self) -> torch.Tensor:
        return sum(p.pow(2).sum() for p in self.parameters())


class AdapterMixin:
    """Mixed in before a RecBole model class by :func:`adapt`; see the module docstring."""

    llmaug_family: Family

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        dim = self._llmaug_representation_dim()
        self.llmaug = Adapter(config, dataset, dim, self.device)
        self._llmaug_cache = None

    # -- representations -------------------------------------------------------------------

    def _llmaug_representation_dim(self) -> int:
        # One probe forward, without disturbing the RNG streams base and adapted runs share.
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            users, items = self.llmaug_family.representations(self)
        ok = (
            isinstance(users, torch.Tensor) and isinstance(items, torch.Tensor)
            and users.dim() == 2 and items.dim() == 2
            and users.shape[0] == self.n_users and items.shape[0] == self.n_items
            and users.shape[1] == items.shape[1]
        )
        if not ok:
            raise ModelError(
                f"cannot adapt {type(self).__name__}: its representations are not "
                f"[n_users, d] and [n_items, d] matrices"
            )
        return int(users.shape[1])

    def llmaug_representations(self):
        """(users, items, reconstruction loss or None): h = e + w1 * sum_k normalised f_k."""
        users, items = self.llmaug_family.representations(self)
        settings, fr_loss = self.llmaug.settings, None
        if self.llmaug.encoder is not None:
            user_term, item_term, fr_loss = self.llmaug.feature_terms(self.training)
            if settings.feature_weight > 0:
                users = users + settings.feature_weight * user_term
                items = items + settings.feature_weight * item_term
        return users, items, fr_loss

    def _llmaug_eval_representations(self):
        if self.training:
            users, items, _ = self.llmaug_representations()
            return users, items
        if self._llmaug_cache is None:
            users, items, _ = self.llmaug_representations()
            self._llmaug_cache = (users.detach(), items.detach())
        return self._llmaug_cache

    # -- what RecBole's Trainer calls ------------------------------------------------------

    def calculate_loss(self, interaction):
        self._llmaug_cache = None
        settings = self.llmaug.settings
        user = interaction[self.USER_ID]
        pos = interaction[self.ITEM_ID]
        neg = interaction[self.NEG_ITEM_ID]
        users, items, fr_loss = self.llmaug_representations()

        extra = sample_edges(self.llmaug.aug_edges, round(settings.aug_edge_ratio * user.shape[0]))
        all_user = torch.cat([user, extra[:, 0]])
        all_pos = torch.cat([pos, extra[:, 1]])
        all_neg = torch.cat([neg, extra[:, 2]])
        user_e = users[all_user]
        losses = bpr_per_triplet(
            (user_e * items[all_pos]).sum(dim=1), (user_e * items[all_neg]).sum(dim=1)
        )
        if settings.prune_scope == "augmented":
            n = user.shape[0]
            loss = pruned_mean_of_part(losses, n, settings.prune_ratio)
        else:
            loss = pruned_mean(losses, settings.prune_ratio)
        if self.llmaug_family.bpr_reduction == "sum":
            loss = loss * user.shape[0]

        auxiliary = self.llmaug_family.auxiliary_loss(self, user, pos, neg)
        if auxiliary is not None:
            loss = loss + auxiliary
        if fr_loss is not None:
            loss = loss + settings.mae_weight * fr_loss
        if settings.weight_decay > 0:
            loss = loss + settings.weight_decay * self.llmaug.l2()
        return loss

    def predict(self, interaction):
        users, items = self._llmaug_eval_representations()
        u = users[interaction[self.USER_ID]]
        return (u * items[interaction[self.ITEM_ID]]).sum(dim=1)

    def full_sort_predict(self, interaction):
        users, items = self._llmaug_eval_representations()
        return (users[interaction[self.USER_ID]] @ items.T).view(-1)

    # -- keep the evaluation cache honest --------------------------------------------------

    def train(self, mode: bool = True):
        self._llmaug_cache = None
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        self._llmaug_cache = None
        return super().load_state_dict(state_dict, strict=strict, **kwargs)


_ADAPTED: dict[type, type] = {}


def adapt(model_class: type) -> type:
    """The adapted subclass of a RecBole model class (ModelError if it cannot be adapted)."""
    if isinstance(model_class, type) and issubclass(model_class, AdapterMixin):
        return model_class
    family = family_of(model_class)
    if model_class not in _ADAPTED:
        _ADAPTED[model_class] = type(
            model_class.__name__,  # RecBole names logs and checkpoints after the class
            (AdapterMixin, model_class),
            {
                "llmaug_family": family,
                "__module__": __name__,
                "__qualname__": f"adapt({model_class.__name__})",
                "__doc__": f"{model_class.__name__} adapted by llmaug: {__doc__.splitlines()[0]}",
            },
        )
    return _ADAPTED[model_class]
