"""Distribution strategies: one device, several GPUs (MirroredStrategy), several machines."""
from __future__ import annotations

import json
import os

import tensorflow as tf

from ..errors import Yolo3Error

__all__ = ["make_strategy", "StrategyError"]


class StrategyError(Yolo3Error):
    """A strategy request that this machine cannot satisfy (one-line message)."""


def _tf_config() -> dict | None:
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise StrategyError("TF_CONFIG is not valid JSON") from None


def worker_info() -> tuple[int, int, bool]:
    """(number of workers, this worker's index, is chief) from TF_CONFIG (1, 0, True without it)."""
    cfg = _tf_config()
    if not cfg:
        return 1, 0, True
    cluster = cfg.get("cluster", {})
    task = cfg.get("task", {})
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if "chief" in cluster:
        is_chief = kind == "chief"
        flat_index = 0 if is_chief else index + 1
    else:
        is_chief = kind == "worker" and index == 0
        flat_index = index
    return max(workers, 1), flat_index, is_chief


def make_strategy(strategy: str = "auto", gpu_num: int = 1) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy to train under.

    Args:
        strategy: ``auto``: MultiWorkerMirroredStrategy when TF_CONFIG names several workers,
            MirroredStrategy when ``gpu_num`` > 1, else the default strategy. ``mirrored``:
            MirroredStrategy over ``gpu_num`` GPUs (or, without enough GPUs, as many logical CPU devices
            if they were configured -- how tests run it). ``multiworker``: MultiWorkerMirroredStrategy
            configured by TF_CONFIG. ``default``/``one``: one device.
        gpu_num: replicas (GPUs) for ``mirrored`` / ``auto``.

    Raises:
        StrategyError: an unknown ``strategy``, ``multiworker`` without TF_CONFIG, or more GPUs asked
            for than are visible.
    """
    if strategy not in ("auto", "mirrored", "multiworker", "default", "one"):
        raise StrategyError(f"unknown strategy '{strategy}' (auto, mirrored, multiworker, default)")
    workers, _, _ = worker_info()
    if strategy == "auto":
        strategy = "multiworker" if workers > 1 else "mirrored" if gpu_num > 1 else "default"
    if strategy == "multiworker":
        if _tf_config() is None:
            raise StrategyError("--strategy multiworker needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        cpus = tf.config.list_logical_devices("CPU")
        if gpu_num <= len(gpus) and gpus:
            devices = [d.name for d in gpus[:max(gpu_num, 1)]]
        elif gpu_num <= len(cpus) and gpu_num > 1:
            devices = [d.name for d in cpus[:gpu_num]]
        else:
            raise StrategyError(f"--gpu_num {gpu_num} but only {len(gpus)} GPU(s) are visible")
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def split_cpu(count: int) -> None:
    """Split the CPU into ``count`` logical devices (must run before TensorFlow initialises)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
