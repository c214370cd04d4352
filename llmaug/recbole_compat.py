"""Everything llmaug needs to run RecBole 1.2.1 on today's packages, in one place.

RecBole logs through the root logger and triggers pandas FutureWarnings on every load; inside
llmaug those are noise on the user's terminal, so they are silenced only while llmaug drives it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, Optional


@contextlib.contextmanager
def quiet_recbole() -> Iterator[None]:
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        root.setLevel(previous)


@contextlib.contextmanager
def trusted_checkpoints() -> Iterator[None]:
    """torch >= 2.6 loads with ``weights_only=True``; RecBole's checkpoints pickle its Config.

    Only for checkpoints the current run wrote itself, never for files a user hands in.
    """
    key = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
    previous = os.environ.get(key)
    os.environ[key] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous


# RecBole's model packages by family, as the README's support matrix names the families
MODEL_FAMILIES = {
    "general": "general_recommender",
    "sequential": "sequential_recommender",
    "context-aware": "context_aware_recommender",
    "knowledge-aware": "knowledge_aware_recommender",
}


def model_package(name: str) -> ModuleType:
    """``recbole.model.<name>``, with torch's autograd anomaly mode as it was before the import.

    RecBole 1.2.1's ``sequential_recommender/sine.py`` calls ``torch.autograd.set_detect_anomaly(True)``
    when imported, and importing the package (as ``Config`` does for any sequential model's name)
    imports it: every backward pass after it, of any model in the process, then records a stack
    trace per operation and checks each gradient: an epoch on sparse ml-100k, 2 cores, took 58.5 s
    for SASRec with it and 47.0 s without."""
    import importlib

    import torch

    enabled = torch.is_anomaly_enabled()
    try:
        return importlib.import_module(f"recbole.model.{name}")
    finally:
        torch.autograd.set_detect_anomaly(enabled)


def any_item_field_in_sequences() -> None:
    """RecBole 1.2.1 reads sequential benchmark files only when the item id field is called
    ``item_id``: ``SequentialDataset._benchmark_presets`` reads ``self.item_id_list_field``, an
    attribute it sets per field name (``book_list_field`` for a field ``book``). Here it is the item
    id field's list, whatever its name; setting it, as RecBole does for ``item_id``, still works."""
    from recbole.data.dataset import SequentialDataset

    if isinstance(vars(SequentialDataset).get("item_id_list_field"), property):
        return

    def read(dataset) -> str:
        return vars(dataset).get("_item_id_list_field") or dataset.iid_field + dataset.config["LIST_SUFFIX"]

    def write(dataset, value: str) -> None:
        vars(dataset)["_item_id_list_field"] = value

    SequentialDataset.item_id_list_field = property(read, write)


def recbole_config(model: str, dataset_dir: Path, config_dict: Optional[dict[str, Any]] = None, config_files: Optional[list[Path]] = None):
    """A RecBole ``Config`` for an atomic dataset directory (``data_path`` = its parent)."""
    from recbole.config import Config

    dataset_dir = Path(dataset_dir).resolve()
    values = {"data_path": str(dataset_dir.parent), "show_progress": False}
    values.update(config_dict or {})
    with quiet_recbole():
        config = Config(
            model=model,
            dataset=dataset_dir.name,
            config_file_list=[str(p) for p in config_files or []],
            config_dict=values,
        )
    # RecBole 1.2.1 points any dataset named "ml-100k" at its bundled copy, whatever data_path says.
    config["data_path"] = str(dataset_dir)
    return config


def check_model_runs(config, dataset) -> None:
    """One clear line for model settings that RecBole would only reject deep inside training.

    NCL clusters users and items with faiss (``gpu=True`` is harmless: faiss-cpu counts zero
    GPUs and stays on the CPU) into ``num_clusters`` clusters, which faiss refuses when a side
    has fewer nodes than clusters -- RecBole's default 1000 on MovieLens-100K's 943 users.
    """
    from llmaug.errors import ConfigError, ModelError

    if config["model"] != "NCL":
        return
    try:
        import faiss  # noqa: F401
    except ImportError:
        raise ModelError("NCL needs faiss, which is not installed: pip install faiss-cpu (or faiss-gpu)") from None
    smallest = min(dataset.user_num, dataset.item_num)
    if config["num_clusters"] > smallest:
        raise ConfigError(
            f"NCL's num_clusters ({config['num_clusters']}) is more than this dataset's {smallest} "
            f"{'users' if dataset.user_num <= dataset.item_num else 'items'}; set it lower, "
            f"e.g. --set num_clusters={max(2, smallest // 10)}"
        )
