"""Adapters that wrap embedding-based RecBole models with llmaug features and losses.

    from llmaug.adapters import adapt, DEFAULTS_FILE
    model = adapt(recbole.utils.get_model("LightGCN"))(config, train_data.dataset)

``DEFAULTS_FILE`` (``adapter.yaml``) documents every knob and its default; pass it first in
RecBole's ``config_file_list``. ``preset_file("paper")`` sets the knobs where llmaug's default
departs from LLMRec as published to the paper's reading (docs/PAPER.md); pass it after the defaults.
"""

from .model import AdapterMixin, adapt
from .settings import DEFAULTS_FILE, PRESETS, AdapterSettings, preset_file
from .shapes import REFUSED, REGISTRY, Shape, forward_shape, sequence_shape, shape_of, tables_shape

__all__ = ["adapt", "AdapterMixin", "AdapterSettings", "DEFAULTS_FILE", "PRESETS", "REGISTRY", "REFUSED", "Shape",
           "forward_shape", "preset_file", "sequence_shape", "tables_shape", "shape_of"]
