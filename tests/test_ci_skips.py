"""Under CI (CI=true) a missing prerequisite that CI must have fails the run; on a user's machine it skips."""
import pytest
from conftest import in_ci, skip_or_fail_in_ci


def _outcome(reason: str) -> BaseException:
    """What skip_or_fail_in_ci raises, caught whatever it is (a skip escaping pytest.raises(Failed) would
    mark the test skipped, not failed)."""
    try:
        skip_or_fail_in_ci(reason)
    except BaseException as exc:  # noqa: BLE001 - pytest's outcomes derive from BaseException
        return exc
    raise AssertionError("skip_or_fail_in_ci returned")


def test_missing_weights_skip_on_a_users_machine(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert not in_ci()
    outcome = _outcome("real yolov3-tiny weights unavailable: offline")
    assert isinstance(outcome, pytest.skip.Exception) and "weights unavailable" in str(outcome)


@pytest.mark.parametrize("value", ["true", "True", "1"])
def test_missing_weights_fail_under_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    assert in_ci()
    outcome = _outcome("real yolov3-tiny weights unavailable: offline")
    assert isinstance(outcome, pytest.fail.Exception) and "CI=true" in str(outcome)


def test_pytest_prints_skip_reasons():
    """-rfEs in pyproject's addopts: every skip is listed with its reason at the end of a run (and, as by
    default, every failure and error: -r replaces pytest's default fE)."""
    import tomllib
    from conftest import ROOT

    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    report = [opt for opt in addopts.split() if opt.startswith("-r")]
    assert report and {"s", "f", "E"} <= set(report[0][2:]) and "not slow" in addopts


def test_ci_runs_the_readme_test_commands_and_the_slow_tests():
    from conftest import ROOT

    script = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test\n" in script and "make test-slow" in script
    assert "make test " in readme and "make test-slow" in readme
