"""The split as RecBole's sequential recommenders read it: one row per target item with the items
before it, in time order (RecBole's benchmark format for sequential models).

RecBole builds these rows itself only when it splits the data; given benchmark files, a sequential
dataset expects them ready (``<item>_list`` next to each target). Each training interaction after a
user's first is a target with its earlier training items, as RecBole's own augmentation makes them;
validation's targets follow the user's training sequence, test's follow training and validation.
A list holds at most ``max_length`` items, the most recent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .split import Split

SEQUENCE_FILES = {"train": "seqtrain", "valid": "seqvalid", "test": "seqtest"}  # part -> .inter suffix
LIST_SUFFIX = "_list"  # RecBole's LIST_SUFFIX default
MAX_LENGTH = 50        # RecBole's MAX_ITEM_LIST_LENGTH default


def sequence_parts(split: Split, uid: str, iid: str, time_field: str, max_length: int = MAX_LENGTH) -> dict[str, pd.DataFrame]:
    """Per part, rows of (user, target item, the user's earlier items as one space-separated cell)."""
    names = list(split.parts())
    # Ids as text: a categorical would sort by its codes (first appearance), not by the ids.
    frames = [frame[[uid, iid, time_field]].astype({uid: object, iid: object}).assign(_part=k) for k, frame in enumerate(split.parts().values())]
    rows = pd.concat(frames, ignore_index=True)
    rows["_time"] = pd.to_numeric(rows[time_field], errors="coerce")
    rows = rows.sort_values([uid, "_part", "_time"], kind="stable")  # each user's sequence, training first
    users, items, parts = rows[uid].to_numpy(), rows[iid].to_numpy(), rows["_part"].to_numpy()
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    out: dict[str, list[tuple[str, str, str]]] = {name: [] for name in names}
    for start, end in zip(starts, np.r_[starts[1:], len(users)]):
        history: list[str] = []
        for k in range(start, end):
            if history:  # a user's first interaction has nothing before it to predict from
                out[names[parts[k]]].append((users[k], items[k], " ".join(history[-max_length:])))
            history.append(items[k])
    columns = [uid, iid, iid + LIST_SUFFIX]
    return {name: pd.DataFrame(found, columns=columns) for name, found in out.items()}
