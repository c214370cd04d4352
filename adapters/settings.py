"""The adapter's knobs, read once from a RecBole ``Config`` and checked.

Defaults live in ``adapter.yaml`` next to this module (merged by RecBole's ``Config``); this
module only validates, so a bad value fails at model construction with a ``ConfigError`` instead
of deep inside a training epoch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from llmaug.errors import ConfigError

from .losses import LARGEST, SMALLEST

log = logging.getLogger(__name__)
DEFAULTS_FILE = Path(__file__).with_name("adapter.yaml")
PRESETS = ("paper",)


def preset_file(name: str) -> Path:
    """The config file of a named preset (``adapters/presets/<name>.yaml``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: the presets are {', '.join(PRESETS)}")
    return Path(__file__).with_name("presets") / f"{name}.yaml"


MASK_TOKENS = ("learnable", "mean")
# What the item-attribute feature embeds: the item's text with its generated attributes, one
# vector (llmaug), or each generated attribute's value alone, one feature each (the reference).
WITH_ITEM_TEXT, PER_ATTRIBUTE = "with_item_text", "per_attribute"
ITEM_ATTRIBUTES = "item_attributes"  # the feature name the choice applies to
# What noise pruning ranks: the LLM's triplets alone (llmaug) or the batch's own with them (E u E_A, Eq. 7).
LLM_TRIPLETS, ALL_TRIPLETS = "llm_triplets", "all_triplets"


@dataclass(frozen=True)
class AdapterSettings:
    features: tuple[str, ...]
    feature_fields: dict
    augmented_features: tuple[str, ...]
    feature_weight: float  # w1
    feature_dropout: float
    propagation_layers: int
    feature_rank: int
    augedge_file: str | None
    aug_edge_ratio: float  # w3
    prune_ratio: float  # w4
    prune_drops: str  # LARGEST (llmaug) or SMALLEST (Eq. 7 as published)
    prune_over: str  # LLM_TRIPLETS (llmaug) or ALL_TRIPLETS (Eq. 7's E u E_A)
    weight_decay: float  # w2
    mae_weight: float  # lambda
    mask_ratio: float
    mae_gamma: float
    mask_token: str
    mask_in_forward: bool  # llmaug: masked features only in L_FR; True: in the forward pass the model's loss sees (§3.3.2)
    item_attributes: str  # WITH_ITEM_TEXT (llmaug) or PER_ATTRIBUTE (the reference)

    @property
    def masked_features(self) -> tuple[str, ...]:
        """Features the MAE masks: augmented ones that are also in use, when MAE is on."""
        if self.mae_weight <= 0 or self.mask_ratio <= 0:
            return ()
        return tuple(f for f in self.features if f in self.augmented_features)

    @classmethod
    def from_config(cls, config) -> "AdapterSettings":
        def get(key, default=None):
            try:
                value = config[key]
            except KeyError:
                value = None
            return default if value is None else value

        if get("llmaug_prune_scope") is not None:
            raise ConfigError(
                f"llmaug_prune_scope is now llmaug_prune_over: {LLM_TRIPLETS} (the default) or {ALL_TRIPLETS} "
                "(the batch's own triplets with the LLM's, as Eq. 7 prunes); rename the key"
            )
        features = tuple(get("llmaug_features", ()))
        fields = dict(get("llmaug_feature_fields", {}))
        augmented = tuple(get("llmaug_augmented_features", ()))
        item_attributes = str(get("llmaug_item_attributes", WITH_ITEM_TEXT))
        if item_attributes == PER_ATTRIBUTE and ITEM_ATTRIBUTES in features:
            features, fields, augmented = _per_attribute(features, fields, augmented, get("llmaug_attribute_fields"))
        unknown = [f for f in features if f not in fields]
        if unknown:
            raise ConfigError(
                f"llmaug_features names {unknown} that llmaug_feature_fields does not map to a "
                f"preloaded-weight field (known: {sorted(fields)})"
            )
        settings = cls(
            features=features,
            feature_fields=fields,
            augmented_features=augmented,
            feature_weight=float(get("llmaug_feature_weight", 0.0)),
            feature_dropout=float(get("llmaug_feature_dropout", 0.0)),
            propagation_layers=int(get("llmaug_propagation_layers", 0)),
            feature_rank=int(get("llmaug_feature_rank", 0)),
            augedge_file=get("llmaug_augedge_file"),
            aug_edge_ratio=float(get("llmaug_aug_edge_ratio", 0.0)),
            prune_ratio=float(get("llmaug_prune_ratio", 0.0)),
            prune_drops=str(get("llmaug_prune_drops", LARGEST)),
            prune_over=str(get("llmaug_prune_over", LLM_TRIPLETS)),
            weight_decay=float(get("llmaug_weight_decay", 0.0)),
            mae_weight=float(get("llmaug_mae_weight", 0.0)),
            mask_ratio=float(get("llmaug_mask_ratio", 0.0)),
            mae_gamma=float(get("llmaug_mae_gamma", 1.0)),
            mask_token=str(get("llmaug_mask_token", "learnable")),
            mask_in_forward=get("llmaug_mask_in_forward", False),
            item_attributes=item_attributes,
        )
        settings._check()
        return settings

    def _check(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(self.feature_weight >= 0, "llmaug_feature_weight (w1) must be >= 0")
        need(0 <= self.feature_dropout < 1, "llmaug_feature_dropout must be in [0, 1)")
        need(self.propagation_layers >= 0, "llmaug_propagation_layers must be >= 0")
        need(self.feature_rank >= 0, "llmaug_feature_rank must be >= 0 (0 keeps every dimension)")
        need(self.aug_edge_ratio >= 0, "llmaug_aug_edge_ratio (w3) must be >= 0")
        need(0 <= self.prune_ratio < 1, "llmaug_prune_ratio (w4) must be in [0, 1)")
        need(self.prune_drops in (LARGEST, SMALLEST),
             f"llmaug_prune_drops must be {LARGEST} or {SMALLEST}, not {self.prune_drops!r}")
        need(self.prune_over in (LLM_TRIPLETS, ALL_TRIPLETS),
             f"llmaug_prune_over must be {LLM_TRIPLETS} or {ALL_TRIPLETS}, not {self.prune_over!r}")
        need(self.weight_decay >= 0, "llmaug_weight_decay (w2) must be >= 0")
        need(self.mae_weight >= 0, "llmaug_mae_weight (lambda) must be >= 0")
        need(0 <= self.mask_ratio <= 1, "llmaug_mask_ratio must be in [0, 1]")
        need(self.mae_gamma > 0, "llmaug_mae_gamma must be > 0")
        need(isinstance(self.mask_in_forward, bool),
             f"llmaug_mask_in_forward must be true or false, not {self.mask_in_forward!r}")
        need(self.item_attributes in (WITH_ITEM_TEXT, PER_ATTRIBUTE),
             f"llmaug_item_attributes must be {WITH_ITEM_TEXT} or {PER_ATTRIBUTE}, not {self.item_attributes!r}")
        need(
            self.mask_token in MASK_TOKENS,
            f"llmaug_mask_token must be one of {MASK_TOKENS}, not {self.mask_token!r}",
        )


def _per_attribute(features: tuple[str, ...], fields: dict, augmented: tuple[str, ...], attribute_fields) -> tuple[tuple, dict, tuple]:
    """(features, fields, augmented) with ``item_attributes`` replaced by one feature per generated
    attribute (``item_attr_<name>``, each mapped to its id field)."""
    if attribute_fields is None:
        raise ConfigError(
            f"llmaug_item_attributes: {PER_ATTRIBUTE} needs one vector file per generated attribute, which this "
            "dataset lacks (no llmaug_attribute_fields in its recbole.yaml): run llmaug augment on it again "
            f"(answers come from its journal), or use {WITH_ITEM_TEXT}"
        )
    if not attribute_fields:
        log.warning("llmaug_item_attributes: %s: no generated attribute has a value in this dataset; "
                    "the item-attribute features are left out", PER_ATTRIBUTE)
    names = {f"item_attr_{attribute}": field for attribute, field in dict(attribute_fields).items()}

    def expanded(keys: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n for key in keys for n in (names if key == ITEM_ATTRIBUTES else [key]))

    return expanded(features), {**fields, **names}, expanded(augmented)
