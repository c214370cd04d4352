"""The training split handed to RecBole as arrays, and a negative sampler that scales with it.

RecBole would read the split from a text file with pandas' Python engine (2.5 min and several GB
for 24 M rows), keep each user's items as a Python set, once per phase (1 M users: gigabytes of
sets, and a Python loop over every sampled negative), and index its batches through a list of
every row number (24 M Python ints: 0.9 GB for the whole training run), shuffled each epoch into
another list as large. All of these are replaced here; the rest of RecBole's processing runs as
usual, and on the same rows the base model gets the same ids, the same batches and the same
negatives as RecBole's own loading would give it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.utils.data
from recbole.data.dataloader.abstract_dataloader import AbstractDataLoader
from recbole.data.dataset import Dataset
from recbole.sampler import Sampler
from recbole.utils import FeatureSource, FeatureType

from ..distinct import column_values, factorize
from ..keyed_rows import KeyedRows


class TrainingSplit(Dataset):
    """A RecBole dataset of the training split's user and item ids, then empty validation and
    test parts (the base model must never see those).

    The ids are taken out of ``train`` (its other columns are left as they were): RecBole turns
    them into integer ids and drops the tokens, which would otherwise stay in memory for as long
    as the caller holds the frame. Ids given as categoricals (the split's) reach RecBole's ids
    through their codes, never as a column of 24 M text pointers (0.2 GB each at 10^6 users)."""

    def __init__(self, config, train: pd.DataFrame) -> None:
        fields = (config["USER_ID_FIELD"], config["ITEM_ID_FIELD"])
        self._ids: dict[str, np.ndarray | pd.Categorical] | None = {field: column_values(train.pop(field)) for field in fields}
        super().__init__(config)

    def _load_inter_feat(self, token, dataset_path) -> None:
        for field in self._ids:  # what Dataset._load_feat records for a token column of an interaction file
            self.field2source[field] = FeatureSource.INTERACTION
            self.field2type[field] = FeatureType.TOKEN
            self.field2seqlen[field] = 1
        self.inter_feat = pd.DataFrame(self._ids, copy=False)
        self.file_size_list = [len(self.inter_feat), 0, 0]
        self._ids = None  # RecBole's copies of the dataset must not keep the tokens alive

    def _remap(self, remap_list) -> None:
        """``Dataset._remap`` for an id only the interactions hold (each of this dataset's two):
        ids 1, 2, ... by first appearance, 0 for ``[PAD]``, with the hash table grown as ids come
        (``distinct.factorize``). RecBole's ``pd.factorize`` sizes it by the rows, ~50 bytes a row:
        1.2 GB at 24 M rows, beside them."""
        if len(remap_list) != 1 or remap_list[0][2] != FeatureType.TOKEN or remap_list[0][1] in self.field2id_token:
            return super()._remap(remap_list)
        [(feat, field, _)] = remap_list
        ids, tokens = factorize(feat[field].values)
        ids = ids.astype(np.int32) if len(tokens) < 2**31 - 1 else ids  # int32 through to the Interaction
        ids += 1
        self.field2id_token[field] = np.array(["[PAD]"] + list(tokens))
        self.field2token_id[field] = _TokenIds(self.field2id_token[field])
        feat[field] = ids

    def _dataframe_to_interaction(self, data: pd.DataFrame):
        """RecBole's, but the ids ``_remap`` left as int32 stay int32 (its ``LongTensor`` copies were
        0.19 GB a column at 10^6 users, held through training and ranking); the training loader
        widens each batch's ids back (``_PermutationBatched``), so models get RecBole's int64."""
        from recbole.data.interaction import Interaction

        narrow = [field for field in data if data[field].dtype == np.int32 and self.field2type[field] == FeatureType.TOKEN]
        rest = data[[field for field in data if field not in narrow]]
        tensors = super()._dataframe_to_interaction(rest).interaction if len(rest.columns) else {}
        tensors.update({field: torch.from_numpy(np.ascontiguousarray(data[field].to_numpy())) for field in narrow})
        return Interaction({field: tensors[field] for field in data})


class _TokenIds(KeyedRows, Mapping):
    """``field2token_id[field]``, token -> id, over the id's tokens (``KeyedRows``: the index is made
    when first asked). RecBole builds a dict of numpy strings, ~130 MB at 10^6 users held beside
    the model while it trains; nothing llmaug runs asks a token's id."""

    def __getitem__(self, token: str) -> int:
        return int(self._row(token))


def pair_codes(dataset: Dataset) -> np.ndarray:
    """The dataset's distinct (user, item) pairs as sorted int64 codes ``user * item_num + item``:
    a user's items are one contiguous run, found by binary search (RecBole's ``inter_matrix`` is a
    float64 COO matrix and a CSR copy, ~0.8 GB at 24 M pairs, for the same set)."""
    codes = dataset.inter_feat[dataset.uid_field].numpy().astype(np.int64)  # a copy, computed and sorted in place
    codes *= dataset.item_num
    codes += dataset.inter_feat[dataset.iid_field].numpy()
    codes.sort()
    first = np.empty(len(codes), dtype=bool)  # np.unique would hold a sorted copy and its mask beside the codes
    first[:1] = True
    np.not_equal(codes[1:], codes[:-1], out=first[1:])
    return codes[first]


class PairSampler(Sampler):
    """RecBole's ``Sampler`` with each phase's used (user, item) pairs as one sorted int64 array of
    ``user * item_num + item``: membership is a binary search, a whole batch at a time."""

    def get_used_ids(self) -> dict[str, np.ndarray]:
        used: dict[str, np.ndarray] = {}
        pairs = np.empty(0, dtype=np.int64)
        for phase, dataset in zip(self.phases, self.datasets):
            pairs = np.union1d(pairs, pair_codes(dataset)) if len(pairs) else pair_codes(dataset)
            used[phase] = pairs
        if (np.bincount(pairs // self.item_num, minlength=self.user_num) + 1 == self.item_num).any():  # [PAD] is an item
            raise ValueError("Some users have interacted with all items, which we can not sample negative items for them.")
        return used

    def sample_by_key_ids(self, key_ids, num: int) -> torch.Tensor:
        """RecBole's rejection sampling, vectorised: draws and redraws in the same order, from the
        same random stream, so the negatives are the ones RecBole's loop would pick."""
        keys = np.tile(np.asarray(key_ids, dtype=np.int64), num) * self.item_num
        values = np.zeros(len(keys), dtype=np.int64)
        pending = np.arange(len(keys))
        while len(pending):
            values[pending] = self.sampling(len(pending))
            pending = pending[self._used(keys[pending] + values[pending])]
        return torch.tensor(values, dtype=torch.long)

    def _used(self, pairs: np.ndarray) -> np.ndarray:
        if not len(self.used_ids):
            return np.zeros(len(pairs), dtype=bool)
        # Searched in sorted order, the lookups walk the used pairs forward instead of jumping
        # across them (24 M pairs at 1M users): 3x faster than the batch's own order.
        order = np.argsort(pairs)
        found = np.empty(len(pairs), dtype=np.int64)
        found[order] = np.minimum(np.searchsorted(self.used_ids, pairs[order]), len(self.used_ids) - 1)
        return self.used_ids[found] == pairs


class _Rows:
    """A training loader's dataset: its row numbers. A batch of them is handed to RecBole's
    ``collate_fn`` as the tensor the batch sampler cut, not as a list of Python ints."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitems__(self, rows: torch.Tensor) -> torch.Tensor:
        return rows


class _PermutedBatches(torch.utils.data.Sampler):
    """Batches as slices of one permutation: ``RandomSampler``'s ``randperm``, drawn from the same
    generator at the same points, cut where ``BatchSampler`` cuts it. ``RandomSampler`` turns that
    permutation into a list of Python ints every epoch (24 M rows at 10^6 users: 0.85 GB)."""

    def __init__(self, rows: int, batch_size: int, shuffle: bool, generator: torch.Generator) -> None:
        self.rows, self.batch_size, self.shuffle, self.generator = rows, batch_size, shuffle, generator

    def __len__(self) -> int:
        return -(-self.rows // self.batch_size)

    def __iter__(self):
        # int32 where the rows fit: the same permutation from the same draws, in half the memory
        dtype = torch.int32 if self.rows < 2**31 else torch.int64
        order = torch.randperm(self.rows, generator=self.generator, dtype=dtype) if self.shuffle else torch.arange(self.rows, dtype=dtype)
        for start in range(0, self.rows, self.batch_size):
            yield order[start : start + self.batch_size]
        del order
        if self.shuffle:  # RandomSampler's tail, ``randperm(n)[:0]``, drawn as it ends: the next epoch's draws follow it
            torch.randperm(self.rows, generator=self.generator, dtype=dtype)


class _PermutationBatched(torch.utils.data.DataLoader):
    """Placed after RecBole's ``AbstractDataLoader`` in a loader's bases, this takes the row
    numbers, batch size and shuffle it hands ``DataLoader`` and batches them as ``_PermutedBatches``."""

    def __init__(self, dataset, *, batch_size: int, shuffle: bool, sampler, generator: torch.Generator, **kwargs) -> None:
        if sampler is not None:
            raise ValueError("llmaug trains its base model in one process; RecBole's distributed sampler is not supported")
        collate = kwargs.pop("collate_fn")
        super().__init__(_Rows(len(dataset)), batch_sampler=_PermutedBatches(len(dataset), batch_size, shuffle, generator),
                         generator=generator, collate_fn=lambda rows: _widened(collate(rows)), **kwargs)


def _widened(batch):
    """A batch's int32 ids (``TrainingSplit`` keeps them so) as the int64 RecBole's models index with."""
    for field, values in batch.interaction.items():
        if values.dtype == torch.int32:
            batch.interaction[field] = values.long()
    return batch


def permutation_batched(loader_class: type) -> Callable[..., torch.utils.data.DataLoader]:
    """``loader_class`` (a RecBole training loader) without a Python int per row: built with its
    row numbers as a ``range`` (``AbstractDataLoader`` builds ``list(range(rows))``, read through
    its module's ``list``) and batched by ``_PermutedBatches``. Same batches, in the same order."""
    batched = type(loader_class.__name__, (loader_class, _PermutationBatched), {})

    def build(*args, **kwargs) -> torch.utils.data.DataLoader:
        module = sys.modules[AbstractDataLoader.__module__]  # its global ``list`` shadows the builtin while the loader is built
        module.list = _range_kept
        try:
            return batched(*args, **kwargs)
        finally:
            del module.list

    return build


def _range_kept(items: Iterable) -> Sequence:
    """``list`` for that module while a loader is built: its one call, on the row numbers' ``range``, keeps the range."""
    return items if isinstance(items, range) else list(items)
