"""What run_training does with the plan: the learning rate each optimizer step gets (also across a
resume), the EMA weights that validation sees and the model saves, mixed precision, and the log."""
import csv
import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

import yolo3  # noqa: E402,F401  (registers the custom layers)
from yolo3.datasets.shapes import generate_shapes_dataset  # noqa: E402
from yolo3.modeling.architectures import TINY_ANCHORS  # noqa: E402
from yolo3.training.config import (  # noqa: E402
    DataConfig,
    EvalConfig,
    ModelConfig,
    OptimConfig,
    RuntimeConfig,
    StageConfig,
    TrainConfig,
)
from yolo3.training.run import run_training  # noqa: E402
from yolo3.training.schedule import WarmupCosine  # noqa: E402

ANCHORS = TINY_ANCHORS * 64 / 416
STEPS = 3


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    return generate_shapes_dataset(str(out), 12, size=96, seed=1, max_objects=3, progress=False)


def _config(shapes, log_dir, epochs, optim=None, callbacks=(), resume=False, lr=(2e-3, 1e-3), batch=2, augment=True):
    return TrainConfig(
        data=DataConfig(annotation=shapes["annotation"], classes=["circle", "square", "triangle"], val_split=0.25,
                        augment=augment),
        model=ModelConfig(anchors=ANCHORS, kind="tiny", input_size=(64, 64)),
        stages=(StageConfig(epochs[0], batch, lr[0], freeze_body=1), StageConfig(epochs[1], batch, lr[1])),
        evaluation=EvalConfig(map_every=0, precise_bn=0),
        optim=optim or OptimConfig(warmup_epochs=1.0),
        runtime=RuntimeConfig(log_dir=str(log_dir), steps_per_epoch=STEPS, verbose=0, seed=3, resume=resume,
                              extra_callbacks=list(callbacks)))


class LearningRates(keras.callbacks.Callback):
    """The learning rate every optimizer step uses, and the epochs that ran."""

    def __init__(self, stop_after_epoch=None):
        super().__init__()
        self.rates, self.epochs, self.stop_after_epoch = [], [], stop_after_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.stop_after_epoch:
            self.model.stop_training = True  # as if interrupted after this epoch's checkpoint


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_every_step_gets_the_planned_rate_and_resume_continues_it(shapes, tmp_path):
    whole = LearningRates()
    run_training(_config(shapes, tmp_path / "whole", (1, 2), callbacks=[whole]))
    # independent: the formula by hand. 9 steps in all, stage 2 starts at global step 3; warm-up
    # 1 epoch (3 steps, at most a third of the stage: 1 step in stage 1, 2 in stage 2)
    def expected(peak, offset, warm, step):
        t = min(step + offset, 9)
        return peak * min(1.0, (step + 1) / warm) * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * t / 9)))

    want = [expected(2e-3, 0, 1, s) for s in range(3)] + [expected(1e-3, 3, 2, s) for s in range(6)]
    np.testing.assert_allclose(whole.rates, want, rtol=1e-5)
    schedule = json.loads((tmp_path / "whole" / "schedule.json").read_text())
    assert schedule["total_steps"] == 9 and [s["warmup_steps"] for s in schedule["stages"]] == [1, 2]
    rows = list(csv.DictReader(open(tmp_path / "whole" / "train.csv")))
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx(  # the rate after each epoch's last step
        [expected(2e-3, 0, 1, 3), expected(1e-3, 3, 2, 3), expected(1e-3, 3, 2, 6)], rel=1e-4)

    # interrupted after the first stage-2 epoch, then resumed with the same settings
    first, second = LearningRates(stop_after_epoch=1), LearningRates()
    run_training(_config(shapes, tmp_path / "cut", (1, 2), callbacks=[first]))
    run_training(_config(shapes, tmp_path / "cut", (1, 2), callbacks=[second], resume=True))
    assert first.epochs == [0, 1] and second.epochs == [2]
    np.testing.assert_allclose(first.rates + second.rates, whole.rates, rtol=1e-6)


class WeightProbe(keras.callbacks.Callback):
    """One trainable variable (the last head convolution's bias): its value after every training
    step and what validation sees."""

    def __init__(self):
        super().__init__()
        self.after_step, self.at_validation = [], []

    def _value(self):
        var = next(v for v in self.model.trainable_variables if v.path.endswith("bias") and "conv_22" in v.path)
        return var.numpy().copy()

    def on_train_batch_end(self, batch, logs=None):
        self.after_step.append(self._value())

    def on_test_begin(self, logs=None):
        self.at_validation.append((len(self.after_step), self._value()))


def _numpy_ema(values, momentum):
    """Keras' use_ema: the first step copies the weights, then a = m * a + (1 - m) * w."""
    average = values[0].copy()
    out = [average.copy()]
    for w in values[1:]:
        average = momentum * average + (1 - momentum) * w
        out.append(average.copy())
    return out


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_ema_weights_are_validated_and_saved(shapes, tmp_path):
    probe = WeightProbe()
    summary = run_training(_config(shapes, tmp_path / "run", (0, 3), callbacks=[probe], lr=(5e-3, 5e-3)))
    momentum = json.loads((tmp_path / "run" / "schedule.json").read_text())["ema_momentum"]
    assert momentum == pytest.approx(0.9)  # 9 steps: the shortest time constant, 10 steps
    ema = _numpy_ema(probe.after_step, momentum)
    assert len(probe.after_step) == 9 and len(probe.at_validation) == 3
    for steps_done, seen in probe.at_validation:
        np.testing.assert_allclose(seen, ema[steps_done - 1], rtol=1e-5, atol=1e-7)
        assert not np.allclose(seen, probe.after_step[steps_done - 1], atol=1e-6)  # not the raw weights
    saved = keras.models.load_model(summary["final_model"], safe_mode=True)
    bias = saved.get_layer("conv_22").weights[1].numpy()
    np.testing.assert_allclose(bias, ema[-1], rtol=1e-5, atol=1e-7)


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_no_ema_saves_the_raw_weights(shapes, tmp_path):
    probe = WeightProbe()
    summary = run_training(_config(shapes, tmp_path / "run", (0, 2), callbacks=[probe], lr=(5e-3, 5e-3),
                                   optim=OptimConfig(warmup_epochs=1.0, ema=False)))
    assert json.loads((tmp_path / "run" / "schedule.json").read_text())["ema_momentum"] is None
    saved = keras.models.load_model(summary["final_model"], safe_mode=True)
    np.testing.assert_allclose(saved.get_layer("conv_22").weights[1].numpy(), probe.after_step[-1], rtol=1e-6)


@pytest.mark.slow  # bfloat16 is emulated (slow) on CPUs without AVX-512 BF16 / AMX: minutes here
def test_mixed_bfloat16_trains_and_saves_a_float32_model(shapes, tmp_path):
    # the same 9 letterboxed images every epoch (3 steps of 3), so the loss can only fall by learning
    summary = run_training(_config(shapes, tmp_path / "run", (0, 3), lr=(3e-3, 3e-3), batch=3, augment=False,
                                   optim=OptimConfig(warmup_epochs=0.0, precision="mixed_bfloat16")))
    loss = summary["history"]["loss"]
    # falling over the run, not step by step: from random weights Adam's second epoch can be above the
    # first (85 -> 104 -> 39 in bfloat16, 103 -> 115 -> 45 in float32 with the same seed)
    assert np.all(np.isfinite(loss)) and loss[2] < 0.7 * loss[0] and max(loss) < 2 * loss[0], loss
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was
    model = keras.models.load_model(summary["final_model"], safe_mode=True)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    out = model(np.random.default_rng(0).random((1, 64, 64, 3), np.float32))
    assert all(o.dtype == "float32" and np.all(np.isfinite(o)) for o in out)
    from yolo3.inference.detector import Detector

    detections = Detector(summary["final_model"], score=0.0).detect([np.full((48, 80, 3), 127, np.uint8)])
    assert len(detections) == 1


def test_schedule_round_trips_through_the_optimizer_config():
    opt = keras.optimizers.Adam(learning_rate=WarmupCosine(1e-3, 100, 10, 5, 0.05))
    again = keras.optimizers.Adam.from_config(opt.get_config())
    assert isinstance(again.learning_rate, float) or again.get_config()["learning_rate"]["config"]["offset"] == 10


def _body_and_rest(model):
    from yolo3.modeling.factory import backbone_layers

    body = {layer.name for layer in backbone_layers(model)}
    weights = {w.path: w.numpy().copy() for w in model.weights}
    return ({k: v for k, v in weights.items() if k.split("/")[0] in body},
            {k: v for k, v in weights.items() if k.split("/")[0] not in body})


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_stage_1_freezes_the_body_of_pretrained_weights_only(shapes, tmp_path, capsys):
    from yolo3.modeling.factory import create_model
    from yolo3.modeling.saving import save_model

    start = create_model("tiny", 3, ANCHORS, size=64)
    save_model(start, str(tmp_path / "start.keras"))
    body0, rest0 = _body_and_rest(start)
    config = _config(shapes, tmp_path / "run", (2, 0), optim=OptimConfig(ema=False), lr=(5e-3, 5e-3))
    config.model.weights = str(tmp_path / "start.keras")
    body1, rest1 = _body_and_rest(keras.models.load_model(run_training(config)["final_model"]))
    assert body1.keys() == body0.keys() and len(body0) > 10
    for key in body0:  # kernels, BN scales and BN statistics of the Darknet body: untouched
        np.testing.assert_array_equal(body1[key], body0[key], err_msg=key)
    changed = [k for k in rest0 if not np.array_equal(rest0[k], rest1[k])]
    assert len(changed) > 0.8 * len(rest0)  # the neck and heads trained

    class BodyProbe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.begin = _body_and_rest(self.model.yolo)[0]

        def on_train_end(self, logs=None):
            self.end = _body_and_rest(self.model.yolo)[0]

    probe = BodyProbe()
    run_training(_config(shapes, tmp_path / "scratch", (1, 0), optim=OptimConfig(ema=False), lr=(5e-3, 5e-3),
                         callbacks=[probe]))
    assert "no --weights: stage 1 trains everything instead of --freeze-body 1" in capsys.readouterr().out
    kernels = [k for k in probe.begin if k.endswith("kernel")]
    assert kernels and all(not np.array_equal(probe.begin[k], probe.end[k]) for k in kernels)


def _stage_2_callbacks(schedule: str, evaluation: EvalConfig) -> list:
    """The schedule callbacks run_training gives stage 2 (its _run_stage replaced by a recorder: no model)."""
    from types import SimpleNamespace

    from yolo3.training import run as run_module

    run = object.__new__(run_module._TrainingRun)
    run.config = SimpleNamespace(stages=(StageConfig(2, 2, 1e-3), StageConfig(3, 2, 1e-4)), evaluation=evaluation)
    run.plan, run.state, seen = SimpleNamespace(schedule=schedule), None, []
    run._run_stage = lambda index, first, last, callbacks: seen.append((index, first, last, callbacks))
    run.train_stage_2()
    assert [s[:3] for s in seen] == [(2, 2, 5)]
    return seen[0][3]


def test_stage_2_with_constant_rates_has_reduce_lr_on_plateau_and_early_stopping():
    """docs/training.md: keras-yolo3's stage 2 (constant rates) has ReduceLROnPlateau(3) and
    EarlyStopping(10) on val_loss; with the cosine schedule neither, unless a patience is given."""
    callbacks = _stage_2_callbacks("constant", EvalConfig())
    kinds = {type(c).__name__: c for c in callbacks}
    assert set(kinds) == {"ReduceLROnPlateau", "EarlyStopping"}
    plateau, stop = kinds["ReduceLROnPlateau"], kinds["EarlyStopping"]
    assert (plateau.monitor, plateau.factor, plateau.patience) == ("val_loss", 0.1, 3)
    assert (stop.monitor, stop.patience) == ("val_loss", 10)
    assert _stage_2_callbacks("cosine", EvalConfig()) == []
    (stop,) = _stage_2_callbacks("cosine", EvalConfig(early_stopping_patience=4))
    assert isinstance(stop, keras.callbacks.EarlyStopping) and stop.patience == 4
