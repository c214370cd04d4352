"""Train a plain RecBole model on an llmaug output directory, with RecBole's own API.

    python examples/train_with_recbole.py runs/ml-100k BPR
"""

import sys
from pathlib import Path

from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_seed

directory, model_name = Path(sys.argv[1]).resolve(), sys.argv[2] if len(sys.argv) > 2 else "BPR"
config = Config(model=model_name, dataset=directory.name, config_file_list=[str(directory / "recbole.yaml")])
config["data_path"] = str(directory)  # RecBole 1.2.1 redirects the name "ml-100k" to its bundled copy
init_seed(config["seed"], config["reproducibility"])
dataset = create_dataset(config)
train, valid, test = data_preparation(config, dataset)
print("augmented user features:", dataset.get_preload_weight("uid").shape)
model = get_model(model_name)(config, train.dataset).to(config["device"])
trainer = get_trainer(config["MODEL_TYPE"], model_name)(config, model)
trainer.fit(train, valid, saved=False)
print(trainer.evaluate(test, load_best_model=False))
