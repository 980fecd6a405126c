"""Shared test settings.

Hypothesis profiles: "ci" (the default) is small and deterministic; "local" searches longer.

    HYPOTHESIS_PROFILE=local python -m pytest tests/test_properties.py
"""

import os

from hypothesis import settings

# derandomize: the same examples on every run; database=None: nothing remembered between runs.
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, deadline=None)
settings.register_profile("local", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
