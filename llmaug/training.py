"""Train one RecBole model, plain (``base``) or adapted, on an augmented dataset directory.

Uses RecBole's own pieces -- Config, create_dataset, data_preparation, get_model, get_trainer --
not ``recbole.quick_start`` (which imports ray). The model is selected on the validation split
(RecBole's early stopping) and the best checkpoint is evaluated once on the test split.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from recbole.config import Config
from recbole.utils import ModelType

from llmaug.errors import ConfigError, DatasetError, ModelError
from llmaug.recbole_compat import any_item_field_in_sequences
from llmaug.writer import CONTEXT_YAML, SEQUENTIAL_YAML

PROTOCOL_FILE = Path(__file__).with_name("training.yaml")
BASE = "base"
ADAPTED = "adapted"


@dataclass
class RunResult:
    model: str
    variant: str  # "base", "adapted" or an ablation name
    seed: int
    valid_metric: str
    best_valid_score: float
    valid_result: dict[str, float]
    test_result: dict[str, float]
    epochs: int  # epochs trained (early stopping included)
    best_epoch: int
    seconds_per_epoch: float  # mean wall time of one training epoch (evaluation excluded)
    checkpoint: str
    overrides: dict[str, Any] = field(default_factory=dict)
    inputs: str = ""  # compare's fingerprint of the config files and dataset the run was trained from

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "RunResult":
        return cls(**json.loads(Path(path).read_text()))


def run_name(model: str, variant: str, seed: int) -> str:
    return f"{model}-{variant}-seed{seed}"


class RunConfig(Config):
    """RecBole's Config with two fixes for llmaug's use.

    * RecBole 1.2.1 points any dataset named ``ml-100k`` at its bundled copy, whatever
      ``data_path`` says; here ``data_path`` always wins.
    * RecBole's distributed set-up hard-codes NCCL and CUDA; without CUDA, processes meet
      over gloo on the CPU instead.
    """

    def _set_default_parameters(self):
        super()._set_default_parameters()
        self.final_config_dict["data_path"] = os.path.join(
            self.external_config_dict["data_path"], self.dataset
        )

    def _init_device(self):
        import torch

        if "local_rank" not in self.final_config_dict or torch.cuda.is_available():
            return super()._init_device()
        cfg = self.final_config_dict
        cfg["gpu_id"] = ""
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(
                backend="gloo",
                rank=cfg["local_rank"] + cfg["offset"],
                world_size=cfg["world_size"],
                init_method=f"tcp://{cfg['ip']}:{cfg['port']}",
            )
        cfg["device"] = torch.device("cpu")
        cfg["single_spec"] = False
        if cfg["local_rank"] != 0:
            cfg["state"] = "error"
            cfg["show_progress"] = False
            cfg["verbose"] = False


def _trainer_class(config):
    from recbole.utils import get_trainer

    base = get_trainer(config["MODEL_TYPE"], config["model"])
    if config["single_spec"] or config["device"].type == "cuda":
        return base

    class CpuDistributedTrainer(base):
        """RecBole wraps the model in DDP with ``device_ids=[rank]``, which only GPU modules accept."""

        def __init__(self, config, model):
            from torch.nn.parallel import DistributedDataParallel

            config["single_spec"] = True
            try:
                super().__init__(config, model)
            finally:
                config["single_spec"] = False
            # Buffers are identical on every rank (derived from the same dataset): no broadcast.
            self.distributed_model = DistributedDataParallel(self.model, broadcast_buffers=False)

    return CpuDistributedTrainer


def model_class(name: str):
    """A RecBole model class by name (RecBole's get_model also tries optional libraries such as
    lightgbm and fails with an ImportError for a misspelt name)."""
    from .recbole_compat import MODEL_FAMILIES, model_package

    for package in MODEL_FAMILIES.values():
        found = getattr(model_package(package), name, None)
        if isinstance(found, type):
            return found
    raise ConfigError(f"unknown model {name!r}: not a RecBole model (try BPR, LightGCN, NGCF, SGL)")


def build_config(
    data: Path,
    model: str,
    *,
    seed: int = 2020,
    config_files: list[Path] | tuple = (),
    config_dict: dict | None = None,
):
    """RecBole Config: adapter defaults < protocol < dataset recbole.yaml < config files < dict."""
    from llmaug.adapters import DEFAULTS_FILE

    data = Path(data).resolve()
    dataset_yaml = data / "recbole.yaml"
    if not dataset_yaml.is_file():
        raise DatasetError(f"{data} has no recbole.yaml: not an llmaug augment output (see docs/FORMAT.md)")
    cls = model_class(model)
    if cls.type == ModelType.SEQUENTIAL:  # its own files: sequences in time order
        dataset_yaml = data / SEQUENTIAL_YAML
        if not dataset_yaml.is_file():
            raise DatasetError(f"{model} is a sequential recommender: it trains on each user's interactions in time order, "
                               f"which {data.name} was not split in. Augment with --split-method leave_one_out --split-order time")
        any_item_field_in_sequences()  # so RecBole reads those files whatever the item field is named
    elif cls.type == ModelType.CONTEXT:  # labelled rows, item and user columns as features
        dataset_yaml = data / CONTEXT_YAML
        if not dataset_yaml.is_file():
            raise DatasetError(f"{model} is a context-aware (CTR) recommender: it learns from labels, which llmaug makes from "
                               f"a rating column (positive from label_threshold up), and {data.name} has none")
    for f in config_files:
        if not Path(f).is_file():
            raise ConfigError(f"config file {f} not found")
    files = [str(DEFAULTS_FILE), str(PROTOCOL_FILE), str(dataset_yaml), *map(str, config_files)]
    values = {"data_path": str(data.parent), "seed": seed, **(config_dict or {})}
    try:
        return RunConfig(model=cls, dataset=data.name, config_file_list=files, config_dict=values)
    except ValueError as exc:  # RecBole's "model not found" and similar
        raise ConfigError(str(exc)) from exc


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    """RecBole's Trainer writes log_tensorboard/ into the working directory; keep it in the run dir."""
    previous = os.getcwd()
    path.mkdir(parents=True, exist_ok=True)
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _float_dict(result) -> dict[str, float]:
    return {k: float(v) for k, v in (result or {}).items()}


def train(
    data: Path,
    model: str,
    *,
    adapted: bool = True,
    seed: int = 2020,
    config_files: list[Path] | tuple = (),
    config_dict: dict | None = None,
    out: Path | None = None,
    variant: str | None = None,
    nproc: int = 1,
    show_progress: bool = False,
    verbose: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
) -> RunResult:
    """Train ``model`` (adapted unless ``adapted=False``) and return its validation/test metrics.

    ``nproc > 1`` runs RecBole's distributed training in that many local processes (NCCL on
    GPUs, gloo on CPU). Checkpoints and the result JSON go to ``out`` (default ``<data>/trained``).
    ``on_epoch(epoch, valid_score)`` is called after each validation (single process only).
    """
    data = Path(data).resolve()
    if adapted:
        from llmaug.adapters import adapt

        adapt(model_class(model))  # a model the adapter cannot wrap fails here, before any loading
    variant = variant or (ADAPTED if adapted else BASE)
    out = Path(out).resolve() if out else data / "trained"
    overrides = dict(config_dict or {})
    checkpoint = out / "checkpoints" / f"{run_name(model, variant, seed)}.pth"
    job = dict(
        data=str(data), model=model, adapted=adapted, seed=seed,
        config_files=[str(Path(f).resolve()) for f in config_files], config_dict=overrides,
        out=str(out), variant=variant, checkpoint=str(checkpoint),
        show_progress=show_progress, verbose=verbose,
    )
    if nproc <= 1:
        result = _train_process(0, job, None, on_epoch=on_epoch)
    else:
        result = _train_distributed(job, nproc)
    result.save(out / "results" / f"{run_name(model, variant, seed)}.json")
    return result


def _train_distributed(job: dict, nproc: int) -> RunResult:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        dist = {"world_size": nproc, "nproc": nproc, "offset": 0, "ip": "127.0.0.1", "port": port}
        mp.spawn(_train_process, args=(job, dist, str(result_file)), nprocs=nproc, join=True)
        return RunResult.load(result_file)


def _train_process(rank: int, job: dict, dist: dict | None, result_file: str | None = None, on_epoch=None) -> RunResult:
    import torch
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    from llmaug.adapters import adapt
    from llmaug.recbole_compat import check_model_runs, quiet_recbole, trusted_checkpoints

    config_dict = {
        **job["config_dict"],
        "show_progress": job["show_progress"],
        "checkpoint_dir": str(Path(job["checkpoint"]).parent),
    }
    if dist:
        config_dict.update(dist, local_rank=rank)
        if not torch.cuda.is_available():  # processes share the CPU: don't oversubscribe it
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // dist["nproc"]))
    quiet = contextlib.nullcontext() if job["verbose"] else quiet_recbole()
    with quiet, _working_dir(Path(job["out"])):
        config = build_config(
            Path(job["data"]), job["model"], seed=job["seed"],
            config_files=job["config_files"], config_dict=config_dict,
        )
        init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        check_model_runs(config, dataset)
        init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
        cls = adapt(model_class(job["model"])) if job["adapted"] else model_class(job["model"])
        model = cls(config, train_data._dataset).to(config["device"])
        trainer = _trainer_class(config)(config, model)
        trainer.saved_model_file = job["checkpoint"]

        epoch_seconds: list[float] = []
        train_epoch = trainer._train_epoch

        def timed_epoch(*args, **kwargs):
            start = time.perf_counter()
            loss = train_epoch(*args, **kwargs)
            epoch_seconds.append(time.perf_counter() - start)
            return loss

        trainer._train_epoch = timed_epoch
        best_epoch = [-1]

        def after_validation(epoch_idx, valid_score):
            if trainer.cur_step == 0:  # RecBole just reset its patience: a new best epoch
                best_epoch[0] = epoch_idx
            if on_epoch is not None:
                on_epoch(epoch_idx, valid_score)

        trainer.fit(train_data, valid_data, saved=True, show_progress=config["show_progress"],
                    verbose=job["verbose"], callback_fn=after_validation)
        if dist:  # only rank 0 writes the checkpoint; every rank reads it next
            torch.distributed.barrier()
        with trusted_checkpoints():  # the checkpoint this run just wrote
            test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=config["show_progress"])
        result = RunResult(
            model=job["model"], variant=job["variant"], seed=job["seed"],
            valid_metric=config["valid_metric"].lower(),
            best_valid_score=float(trainer.best_valid_score),
            valid_result=_float_dict(trainer.best_valid_result),
            test_result=_float_dict(test_result),
            epochs=len(epoch_seconds), best_epoch=best_epoch[0],
            seconds_per_epoch=sum(epoch_seconds) / max(len(epoch_seconds), 1),
            checkpoint=job["checkpoint"], overrides=job["config_dict"],
        )
    if dist:
        if rank == 0 and result_file:
            result.save(Path(result_file))
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return result


__all__ = ["train", "build_config", "RunResult", "run_name", "PROTOCOL_FILE", "ModelError"]
