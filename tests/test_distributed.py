"""Data-parallel training: MirroredStrategy over 2 logical CPU devices matches one device, and a
2-worker MultiWorkerMirroredStrategy run of train.py on localhost completes.

Logical devices and TF_CONFIG must be set before TensorFlow initialises, so both run in
subprocesses."""
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from yolo3.datasets.cleaning import prepare_annotations  # noqa: E402
from yolo3.datasets.shapes import generate_shapes_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes_dist")
    paths = generate_shapes_dataset(str(out), 8, size=64, seed=2, max_objects=3, progress=False)
    paths["clean"] = str(out / "clean.txt")
    prepare_annotations(paths["annotation"], paths["clean"], num_classes=3, progress=False)
    return paths


MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from yolo3.modeling.architectures import TINY_ANCHORS
    from yolo3.training.pipeline import dataset_fn_for_strategy, make_dataset
    from yolo3.modeling.factory import create_model
    from yolo3.training.targets import target_spec_from_model
    from yolo3.training.distribute import make_strategy
    from yolo3.training.freezing import freeze_body
    from yolo3.training.trainer import YoloTrainer

    clean = sys.argv[1]
    anchors = TINY_ANCHORS * 64 / 416
    keras.utils.set_random_seed(0)
    base = create_model("tiny", 3, anchors, size=64)
    weights = base.get_weights()
    spec = target_spec_from_model(base)

    def make(local_batch, shard):
        return make_dataset(clean, spec, (64, 64), local_batch, augment=False, shuffle=False, shard=shard)

    def losses(strategy):
        with strategy.scope():
            model = create_model("tiny", 3, anchors, size=64)
            model.set_weights(weights)
            freeze_body(model, 2)  # frozen BN: per-replica batch statistics cannot differ
            trainer = YoloTrainer(model)
            trainer.compile(optimizer=keras.optimizers.SGD(0.01))
        if strategy.num_replicas_in_sync > 1:
            data = strategy.distribute_datasets_from_function(dataset_fn_for_strategy(make, 4))
        else:
            data = make(4, None)
        hist = trainer.fit(data, steps_per_epoch=1, epochs=2, verbose=0, shuffle=False)
        return hist.history

    one = losses(tf.distribute.OneDeviceStrategy("/cpu:0"))
    mirrored = make_strategy("mirrored", gpu_num=2)
    two = losses(mirrored)
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "one": one, "two": two}))
""")


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_mirrored_two_logical_cpus_match_one_device(shapes):
    proc = subprocess.run([sys.executable, "-c", MIRRORED, shapes["clean"]], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    one, two = result["one"], result["two"]
    # first step: same loss; second step: same loss after one SGD update (gradients summed right)
    assert two["loss"][0] == pytest.approx(one["loss"][0], rel=1e-4)
    assert two["loss"][1] == pytest.approx(one["loss"][1], rel=1e-4)
    assert one["loss"][1] != pytest.approx(one["loss"][0], rel=1e-6)
    for part in ("xy_loss", "wh_loss", "obj_loss", "cls_loss"):
        assert two[part][0] == pytest.approx(one[part][0], rel=1e-4)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_multiworker_two_processes_on_localhost(shapes, tmp_path):
    ports = _free_ports(2)
    workers = [f"127.0.0.1:{p}" for p in ports]
    log_dir = tmp_path / "logs"
    cmd = [sys.executable, str(ROOT / "train.py"), "--annotation", shapes["annotation"], "--classes",
           shapes["classes"], "--model", "tiny", "--input-size", "64", "--epochs", "1", "0", "--batch-size", "4",
           "--steps-per-epoch", "2", "--val-split", "0.25", "--map-every", "0", "--strategy", "multiworker",
           "--log-dir", str(log_dir), "--verbose", "2", "--seed", "1"]
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                      "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=600)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    assert "MultiWorkerMirroredStrategy, 2 replicas, 2 worker(s)" in outputs[0]
    assert (log_dir / "trained_final.keras").is_file()
    assert not (log_dir / ".worker_1").exists()  # the non-chief's scratch folder is removed
