"""What a run left behind, judged the way a user would: by the files and by RecBole itself."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional
from unittest import mock


def tree(path: Path) -> Optional[dict[str, bytes]]:
    """Every file under ``path`` with its bytes (directories as ``b"<dir>"``); ``None`` if absent."""
    if not path.exists():
        return None
    found: dict[str, bytes] = {}
    for root, dirs, files in os.walk(path):
        for name in dirs:
            found[os.path.relpath(os.path.join(root, name), path)] = b"<dir>"
        for name in files:
            full = os.path.join(root, name)
            found[os.path.relpath(full, path)] = Path(full).read_bytes()
    return found


def load_with_recbole(out: Path):
    """Load an augmented dataset with plain RecBole as README shows, down to the training sampler
    (which refuses users who have interacted with every item); return the dataset."""
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation

    with mock.patch.object(sys, "argv", sys.argv[:1]):  # RecBole's Config would read pytest's flags as its own
        config = Config(model="BPR", dataset=out.name, config_file_list=[str(out / "recbole.yaml")])
    dataset = create_dataset(config)
    data_preparation(config, dataset)
    return dataset
