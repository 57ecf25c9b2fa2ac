"""A drop-in that fails at import time."""

import recengine  # noqa: F401

raise RuntimeError("this plugin is broken on purpose")
