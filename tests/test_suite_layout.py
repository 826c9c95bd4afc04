"""The test suite collects on a clean clone.

The test folders have no `__init__.py`, so pytest imports each test file by its basename; two files with
the same name in different folders make collection fail with "import file mismatch" on a clean clone
(a warm `__pycache__` can hide it locally). CI failed once on exactly this.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_every_test_module_has_a_unique_basename() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if "fixtures" in path.parts or "data" in path.relative_to(TESTS).parts:
            continue
        by_name[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not clashes, f"test modules sharing a basename (rename one): {clashes}"
