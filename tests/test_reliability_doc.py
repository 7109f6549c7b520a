"""docs/reliability.md is written from the tests: every test it names exists in tests/."""
from __future__ import annotations

import re

from conftest import ROOT


def test_every_test_named_in_the_reliability_page_exists():
    page = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", page))
    defined = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        defined |= set(re.findall(r"^def (test_[a-z0-9_]+)\(", path.read_text(encoding="utf-8"), re.M))
    assert len(named) > 30
    assert named <= defined, sorted(named - defined)
