"""The augmented dataset as RecBole atomic files (layout in docs/FORMAT.md).

Everything is written into a staging directory first and moved into place only when complete;
``manifest.json`` goes last, so a directory without it is never mistaken for a finished run.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import yaml

from .atomic import AtomicRows, copy_rows, write_atomic_file, write_text_atomically, write_vector_file
from .candidates.pools import Pools
from .dataset import SourceDataset
from .sequences import LIST_SUFFIX, MAX_LENGTH, SEQUENCE_FILES, sequence_parts
from .split import Split
from .user_file import USERS_AT_ONCE, write_user_file

# Embedding files: suffix -> (alias id field, vector field, whose ids)
EMBEDDING_FILES = {
    "useremb": ("uid", "user_profile_emb", "user"),
    "itememb": ("iid", "item_attr_emb", "item"),
    "itemtextemb": ("tid", "item_text_emb", "item"),
}
SEQUENTIAL_YAML = "recbole-sequential.yaml"  # the config for RecBole's sequential recommenders, beside recbole.yaml
CONTEXT_YAML = "recbole-context.yaml"        # and for its context-aware (CTR) recommenders
FEATURE_TYPES = ("token", "token_seq", "float")  # columns a context-aware model embeds as features
# One more per generated attribute, its value alone (no item text): the reference's reading,
# which the adapter's ``llmaug_item_attributes: per_attribute`` trains on.
ATTRIBUTE_FILE_PREFIX = "itemattremb_"


def attribute_suffix(attribute: str) -> str:
    return ATTRIBUTE_FILE_PREFIX + attribute


def embedding_file(suffix: str) -> tuple[str, str, str]:
    """(alias id field, vector field, whose ids) of an embedding file."""
    if suffix.startswith(ATTRIBUTE_FILE_PREFIX):
        attribute = suffix[len(ATTRIBUTE_FILE_PREFIX):]
        return f"aid_{attribute}", f"item_{attribute}_emb", "item"
    return EMBEDDING_FILES[suffix]


PROFILE_ROWS = "profile-rows.tsv"  # the profiles as the users task wrote them, in staging: joined into .user


@dataclass
class AugmentedData:
    """Validated records and vectors, keyed by the source dataset's own tokens. What grows with
    the users was written into staging as the tasks ran (``llmaug.sinks``): the ``.augedge`` file,
    the profile rows, the user vectors."""

    edges_written: bool = False  # the .augedge file, if any user got an edge
    profiles: Optional[Path] = None  # the profile rows, if any user got a profile
    attributes: dict[str, dict[str, Optional[str]]] = field(default_factory=dict)
    candidates: Optional[Pools] = None  # the base model's pools, where the edges task ran
    # suffix -> (ids, matrix), or None for a file already written into staging
    vectors: dict[str, Optional[tuple[list[str], np.ndarray]]] = field(default_factory=dict)


def _with_columns(base: pd.DataFrame, key: str, added: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """``base`` with ``added``'s columns (indexed by ``key``'s values), empty where it has no row."""
    added = added.reindex(base[key])
    added.columns = [f"{prefix}{n}" for n in added.columns]
    return pd.concat([base.reset_index(drop=True), added.reset_index(drop=True).fillna("")], axis=1)


def _write_candidates(path: Path, pools: Pools, rows_at_once: int = USERS_AT_ONCE) -> None:
    """Each user's pool as one ``token_seq`` cell, a slice of users at a time: as one frame of
    strings the pools were ~0.1 GB at 10^6 users (1M strings of ~65 characters)."""
    with AtomicRows(path, {"user_id": "token", "candidates": "token_seq"}, keep_empty=True) as rows:
        for part in pools.slices(rows_at_once):
            rows.frame(pd.DataFrame({"user_id": [user for user, _ in part], "candidates": [" ".join(pool) for _, pool in part]}))


def _emit(staging: Path, suffix: str, frame: pd.DataFrame, types: dict[str, str]) -> str:
    """``frame`` as the atomic file ``<staging name>.<suffix>``; its name, for the written list."""
    write_atomic_file(staging / f"{staging.name}.{suffix}", frame, types)
    return f"{staging.name}.{suffix}"


def write_interactions(staging: Path, source: SourceDataset, split: Split, sequences: bool = False) -> list[str]:
    """The split's parts into ``staging`` (rows copied from the source's file); ``sequences`` (a
    split in time order) adds them as sequential recommenders read them. Return the file names."""
    name = staging.name
    uid, iid = source.uid_field, source.iid_field
    parts = {f"{name}.{part}.inter": frame.index for part, frame in split.parts().items()}
    copy_rows(source.inter, {staging / file: lines for file, lines in parts.items()})
    written = list(parts)
    if sequences:
        for part, frame in sequence_parts(split, uid, iid, source.time_field).items():
            written.append(_emit(staging, f"{SEQUENCE_FILES[part]}.inter", frame, {uid: "token", iid: "token", iid + LIST_SUFFIX: "token_seq"}))
    return written


def write_features(
    staging: Path,
    final_dir: Path,
    source: SourceDataset,
    user_ids: pd.Index,
    data: AugmentedData,
    item_attributes: list[str],
    user_profile: list[str],
    sequences: bool = False,
    label_threshold: float = 4.0,
) -> list[str]:
    """Everything but the split's parts into ``staging`` (named like ``final_dir``): items, users
    (``user_ids``: the parts' users, ``Split.users``), augmented edges, candidates, vectors and the
    RecBole configs; ``sequences`` adds the sequential models' config, a rating column the
    context-aware models'. Return the file names. The parts are written apart (``write_interactions``),
    so that the two never need memory at once (at 10^6 users the parts are ~1 GB); the users with
    their profiles, and the pools, are written a slice of users at a time."""
    name = staging.name
    uid, iid = source.uid_field, source.iid_field
    written: list[str] = []

    def emit(suffix: str, frame: pd.DataFrame, types: dict[str, str]) -> None:
        written.append(_emit(staging, suffix, frame, types))

    items = source.items
    item_types = dict(source.item.types)
    if data.attributes:
        items = _with_columns(items, iid, pd.DataFrame.from_dict(data.attributes, orient="index", columns=item_attributes), "attr_")
        item_types.update({f"attr_{a}": "token" for a in item_attributes})
    emit("item", items, item_types)

    in_split = pd.DataFrame({uid: user_ids})
    users = in_split
    if source.users is not None:  # users .user does not list get a row of empty source columns
        unlisted = in_split[~in_split[uid].isin(source.users[uid])]
        users = pd.concat([source.users, unlisted], ignore_index=True).fillna("")
    user_types = dict(source.user.types) if source.user else {uid: "token"}
    if data.profiles is not None:
        user_types.update({f"profile_{p}": "token" for p in user_profile})
    write_user_file(staging / f"{name}.user", users, uid, user_types, data.profiles, tuple(user_profile))
    written.append(f"{name}.user")

    if data.edges_written:
        written.append(f"{name}.augedge")
    if data.candidates:
        _write_candidates(staging / f"{name}.candidates", data.candidates)
        written.append(f"{name}.candidates")

    # RecBole cannot load a float_seq file without rows (max() of nothing): a kind of vector that no
    # record produced (every profile empty, say) gets no file rather than an empty one.
    vectors = [suffix for suffix, held in data.vectors.items() if held is None or len(held[0])]
    for suffix in vectors:
        if data.vectors[suffix] is not None:
            id_field, vector_field, _ = embedding_file(suffix)
            write_vector_file(staging / f"{name}.{suffix}", id_field, vector_field, *data.vectors[suffix])
        written.append(f"{name}.{suffix}")

    attribute_fields = {a: embedding_file(attribute_suffix(a))[0] for a in item_attributes if attribute_suffix(a) in vectors}
    config = dataset_config(final_dir, source, vectors, attribute_fields if data.attributes else None)
    write_text_atomically(staging / "recbole.yaml", _yaml(final_dir, "BPR", config))
    written.append("recbole.yaml")
    if sequences:
        attributes = [f"attr_{a}" for a in item_attributes] if data.attributes else []
        write_text_atomically(staging / SEQUENTIAL_YAML, _yaml(final_dir, "SASRec", sequential_config(config, uid, iid, attributes)))
        written.append(SEQUENTIAL_YAML)
    if config["RATING_FIELD"]:
        item_fields = [c for c, kind in item_types.items() if c != iid and kind in FEATURE_TYPES]
        user_fields = [c for c, kind in user_types.items() if c != uid and kind in FEATURE_TYPES]
        context = context_config(config, uid, iid, item_fields, user_fields, label_threshold)
        write_text_atomically(staging / CONTEXT_YAML, _yaml(final_dir, "DeepFM", context))
        written.append(CONTEXT_YAML)
    return written


def dataset_config(directory: Path, source: SourceDataset, embedding_suffixes: list[str], attribute_fields: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """The dataset's RecBole config; ``attribute_fields`` (attribute -> id field of its own vectors,
    empty when no attribute got a value) is written where the items task ran, for the adapter."""
    inter_types = source.inter.types
    floats = [f for f, kind in inter_types.items() if kind == "float"]
    config: dict[str, Any] = {
        "data_path": str(Path(directory).resolve().parent),
        "USER_ID_FIELD": source.uid_field,
        "ITEM_ID_FIELD": source.iid_field,
        "RATING_FIELD": next((f for f in floats if "rating" in f.lower()), None),
        "TIME_FIELD": source.time_field,
        "benchmark_filename": ["train", "valid", "test"],
        "normalize_all": False,
        # Only ids by default: text columns would ride along in every training batch (as neg_*
        # copies too). Add the columns a feature-aware model needs to load_col yourself.
        "load_col": {"inter": [source.uid_field, source.iid_field], "item": [source.iid_field], "user": [source.uid_field]},
    }
    if embedding_suffixes:
        files = {s: embedding_file(s) for s in embedding_suffixes}
        config["additional_feat_suffix"] = embedding_suffixes
        config["alias_of_user_id"] = [f[0] for f in files.values() if f[2] == "user"] or None
        config["alias_of_item_id"] = [f[0] for f in files.values() if f[2] == "item"] or None
        config["preload_weight"] = {f[0]: f[1] for f in files.values()}
        config["load_col"].update({s: [f[0], f[1]] for s, f in files.items()})
    if attribute_fields is not None:
        config["llmaug_attribute_fields"] = attribute_fields
    return config


def sequential_config(config: dict[str, Any], uid: str, iid: str, attributes: list[str]) -> dict[str, Any]:
    """The same dataset for RecBole's sequential recommenders: the sequence files, in time order;
    no sampled negatives, as their default cross-entropy loss (SASRec, GRU4Rec...) requires (a model
    set to ``loss_type: BPR`` needs ``train_neg_sample_args`` back). The LLM's item ``attributes``
    are loaded and are the feature-aware models' ``selected_features`` (SASRecF, FDSA, GRU4RecF);
    the other models ignore them."""
    sequential = {
        **config,
        "benchmark_filename": list(SEQUENCE_FILES.values()),
        "load_col": {**config["load_col"], "inter": [uid, iid, iid + LIST_SUFFIX]},
        # The lists hold item ids: without the alias RecBole numbers their tokens apart from the items'.
        "alias_of_item_id": [*(config.get("alias_of_item_id") or []), iid + LIST_SUFFIX],
        "MAX_ITEM_LIST_LENGTH": MAX_LENGTH,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "train_neg_sample_args": None,
    }
    if attributes:
        sequential["load_col"]["item"] = [*config["load_col"]["item"], *attributes]
        sequential["selected_features"] = attributes
    return sequential


def context_config(config: dict[str, Any], uid: str, iid: str, item_fields: list[str], user_fields: list[str],
                   threshold: float) -> dict[str, Any]:
    """The same dataset for RecBole's context-aware (CTR) models: every interaction a labelled row,
    positive when its rating reaches ``threshold``; the item and user columns as their features,
    the LLM's attributes (``attr_*``) and profile fields (``profile_*``) among them; evaluated as
    RecBole evaluates them, AUC and LogLoss on the labelled rows."""
    rating = config["RATING_FIELD"]
    keep = ("data_path", "USER_ID_FIELD", "ITEM_ID_FIELD", "RATING_FIELD", "TIME_FIELD", "benchmark_filename", "normalize_all")
    return {
        **{key: config[key] for key in keep},
        "load_col": {"inter": [uid, iid, rating], "item": [iid, *item_fields], "user": [uid, *user_fields]},
        "threshold": {rating: threshold},
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": None, "mode": "labeled"},
        "train_neg_sample_args": None,
        "metrics": ["AUC", "LogLoss"],
        "valid_metric": "AUC",
    }


def _yaml(directory: Path, model: str, config: dict[str, Any]) -> str:
    header = (
        "# Generated by llmaug: load this directory with plain RecBole, e.g.\n"
        f"#   Config(model='{model}', dataset='{Path(directory).name}', config_file_list=['<this file>'])\n"
        "# RecBole 1.2.1 redirects a dataset named 'ml-100k' to its bundled copy; for that name set\n"
        "# config['data_path'] to this directory after building the Config (llmaug's commands do).\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def commit(staging: Path, out: Path, files: list[str], manifest: dict[str, Any]) -> None:
    """Move a finished staging directory into ``out``: old manifest first, new manifest last."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    stale = {p.name for p in out.glob(f"{out.name}.*")} - set(files)
    for name in stale:
        (out / name).unlink()
    for name in files:
        os.replace(staging / name, out / name)
    write_text_atomically(out / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(staging.parent, ignore_errors=True)
