"""The optimisation plan (yolo3.training.schedule): batch and learning rate from the data set size,
the warm-up + cosine schedule against its formula in numpy, and the EMA momentum."""
import math

import numpy as np
import pytest

from yolo3.training.schedule import (
    MIN_STEPS_PER_EPOCH,
    STAGE2_LR_FACTOR,
    WarmupCosine,
    auto_batch_size,
    ema_momentum,
    plan_training,
)


def _numpy_schedule(peak, total, offset, warmup, final, steps):
    """The documented formula, written independently: peak * ramp * (final + (1 - final) * cosine)."""
    steps = np.asarray(steps, np.float64)
    t = np.minimum(steps + offset, total)
    cosine = final + (1 - final) * 0.5 * (1 + np.cos(np.pi * t / total))
    ramp = np.minimum(1.0, (steps + 1) / warmup) if warmup else np.ones_like(steps)
    return peak * ramp * cosine


@pytest.mark.parametrize("peak,total,offset,warmup,final", [
    (1e-3, 1500, 0, 83, 0.01), (3e-4, 1500, 250, 100, 0.01), (2e-3, 40, 10, 0, 0.1)])
def test_warmup_cosine_matches_its_formula(peak, total, offset, warmup, final):
    schedule = WarmupCosine(peak, total, offset, warmup, final)
    steps = np.arange(0, total - offset + 5)  # also past the end: stays at the final value
    got = schedule.value(steps)  # the Keras graph ops, on every step at once
    assert schedule.value(int(steps[7])) == pytest.approx(got[7])
    np.testing.assert_allclose(got, _numpy_schedule(peak, total, offset, warmup, final, steps), rtol=1e-5)


def test_warmup_cosine_shape():
    s = WarmupCosine(1e-3, 1000, 0, 100, 0.01)
    ramp = list(s.value(np.arange(100)))
    assert all(b > a for a, b in zip(ramp, ramp[1:]))  # rises through the warm-up
    assert s.value(0) == pytest.approx(1e-3 * 0.01, rel=0.01)  # 1/100 of the way
    decay = list(s.value(np.arange(100, 1000, 50)))
    assert all(b < a for a, b in zip(decay, decay[1:]))  # then only falls
    assert s.value(500) == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5), rel=1e-4)  # half-way: half the range
    assert s.value(999) == pytest.approx(1e-5, rel=1e-3) and s.value(5000) == pytest.approx(1e-5, rel=1e-4)
    assert WarmupCosine.from_config(s.get_config()).get_config() == s.get_config()


@pytest.mark.parametrize("n_train,replicas,batch", [
    (400, 1, 8), (100, 1, 8), (799, 1, 8), (800, 1, 16), (1599, 1, 16), (1600, 1, 32), (100_000, 1, 32),
    (400, 3, 9), (5000, 4, 32)])
def test_auto_batch_keeps_enough_steps_an_epoch(n_train, replicas, batch):
    got = auto_batch_size(n_train, replicas)
    assert got == batch and got % replicas == 0
    if got > 8 and replicas == 1:  # the largest batch that still gives MIN_STEPS_PER_EPOCH steps
        assert n_train // got >= MIN_STEPS_PER_EPOCH and n_train // (2 * got) < MIN_STEPS_PER_EPOCH or got == 32


def test_plan_of_the_readme_command_on_400_images():
    plan = plan_training(400, (5, 25), (None, None), (None, None))
    s1, s2 = plan.stages
    assert (s1.batch_size, s2.batch_size, s1.steps_per_epoch, s2.steps_per_epoch) == (8, 8, 50, 50)
    assert STAGE2_LR_FACTOR == 1.0  # docs/benchmarks.md: a 3e-4 stage-2 peak stalled at 0.86
    assert (s1.peak_lr, s2.peak_lr) == (pytest.approx(1e-3), pytest.approx(1e-3))
    assert (s1.offset, s2.offset, plan.total_steps) == (0, 250, 1500)
    assert (s1.warmup_steps, s2.warmup_steps) == (83, 100)  # 2 epochs, at most a third of stage 1
    assert plan.ema == pytest.approx(0.99)  # time constant 1500 / 15 = 100 steps
    assert plan.auto == ("batch 8/8", "lr 0.001/0.001")
    # stage 2's schedule continues the run-wide cosine from step 250, after its own warm-up
    lr2 = plan.learning_rate(1)
    expected = _numpy_schedule(1e-3, 1500, 250, 100, 0.01, [150])[0]
    assert lr2.value(150) == pytest.approx(expected, rel=1e-5)
    curve = plan.curve()
    assert len(curve) == 1500 and curve[0][0] == 0 and curve[-1] == (1499, pytest.approx(1e-5, rel=0.01))


def test_plan_respects_given_values_and_the_constant_schedule():
    plan = plan_training(400, (50, 50), (32, 16), (1e-3, 1e-4), schedule="constant", ema=False)
    assert [(s.batch_size, s.peak_lr, s.steps_per_epoch, s.warmup_steps) for s in plan.stages] == \
        [(32, 1e-3, 12, 0), (16, 1e-4, 25, 0)]
    assert plan.learning_rate(0) == 1e-3 and plan.learning_rate(1) == 1e-4
    assert plan.ema is None and plan.auto == ()
    fixed = plan_training(400, (1, 1), (8, 8), (1e-3, 1e-3), steps_per_epoch=7, warmup_epochs=1)
    assert [s.steps_per_epoch for s in fixed.stages] == [7, 7]
    assert [s.warmup_steps for s in fixed.stages] == [2, 2]  # at least 20 steps, but at most a third
    with pytest.raises(ValueError, match="schedule"):
        plan_training(400, (1, 1), (8, 8), (1e-3, 1e-3), schedule="step")


def test_ema_time_constant_is_a_fraction_of_the_run():
    assert 1 / (1 - ema_momentum(1500)) == pytest.approx(100)
    assert 1 / (1 - ema_momentum(30)) == pytest.approx(10)  # clipped below
    assert 1 / (1 - ema_momentum(10**6)) == pytest.approx(2000)  # and above
    assert math.isclose(ema_momentum(15_000), 0.999)


@pytest.mark.parametrize("flags,stages,optim", [
    ([], [(50, None, None, 1), (50, None, None, 0)], ("cosine", True, 2.0)),
    (["--recipe", "keras-yolo3"], [(50, 32, 1e-3, 2), (50, 32, 1e-4, 0)], ("constant", False, 0.0)),
    (["--recipe", "keras-yolo3", "--batch-size", "8", "--ema"], [(50, 8, 1e-3, 2), (50, 8, 1e-4, 0)],
     ("constant", True, 0.0)),
    (["--batch-size", "16", "auto", "--lr", "auto", "5e-4", "--freeze-body", "2", "--lr-schedule", "constant"],
     [(50, 16, None, 2), (50, None, 5e-4, 0)], ("constant", True, 2.0)),
])
def test_train_py_flags_and_recipes(tmp_path, flags, stages, optim):
    """What train.py's flags become: the default recipe, keras-yolo3's, and explicit flags winning."""
    from yolo3.cli.train import _config, build_parser
    from yolo3.resources import resource_path

    ann = tmp_path / "train.txt"
    ann.write_text("")
    args = build_parser("train.py").parse_args(["--annotation", str(ann), "--classes",
                                                resource_path("voc_classes.txt"), "--model", "tiny", *flags])
    config = _config(args)
    assert [(s.epochs, s.batch_size, s.learning_rate, s.freeze_body) for s in config.stages] == stages
    assert (config.optim.schedule, config.optim.ema, config.optim.warmup_epochs) == optim
    assert config.evaluation.early_stopping_patience is None  # run_training: 10 if constant, off with cosine


def test_train_py_takes_keras_yolo3_default_weights(tmp_path, monkeypatch, capsys):
    """keras-yolo3's train.py loaded model_data/yolo_weights.h5 without a flag; so does train.py."""
    from yolo3.cli.train import _config, build_parser
    from yolo3.resources import resource_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.txt").write_text("")
    argv = ["--classes", resource_path("voc_classes.txt"), "--model", "tiny"]
    assert _config(build_parser("train.py").parse_args(argv)).model.weights is None
    (tmp_path / "model_data").mkdir()
    (tmp_path / "model_data" / "yolo_weights.h5").write_bytes(b"")
    assert _config(build_parser("train.py").parse_args(argv)).model.weights == "model_data/yolo_weights.h5"
    assert "using model_data/yolo_weights.h5" in capsys.readouterr().out
    given = _config(build_parser("train.py").parse_args([*argv, "--weights", "train.txt"]))
    assert given.model.weights == "train.txt"
