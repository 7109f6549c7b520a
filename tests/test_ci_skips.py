"""Under CI (CI=true) a missing prerequisite that CI must have fails the run; on a user's machine it skips."""
import pytest
from conftest import in_ci, skip_or_fail_in_ci


def test_missing_weights_skip_on_a_users_machine(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert not in_ci()
    with pytest.raises(pytest.skip.Exception, match="weights unavailable"):
        skip_or_fail_in_ci("real yolov3-tiny weights unavailable: offline")


@pytest.mark.parametrize("value", ["true", "True", "1"])
def test_missing_weights_fail_under_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    assert in_ci()
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        skip_or_fail_in_ci("real yolov3-tiny weights unavailable: offline")


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
