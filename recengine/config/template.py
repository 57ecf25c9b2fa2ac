"""The commented config file that ``recengine config init`` writes (``template.yaml``, shipped in
the package; the repository's ``config.yaml`` is a copy of it, kept so by a test)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources

#: The template's one library folder, replaced by ``config init --library``.
LIBRARY_LINE = "    - ~/Music\n"


def config_template(library: Sequence[str] = ()) -> str:
    """The template text; with ``library``, those folders instead of ``~/Music``."""
    text = resources.files("recengine.config").joinpath("template.yaml").read_text(encoding="utf-8")
    if library:
        text = text.replace(LIBRARY_LINE, "".join(f"    - {json.dumps(str(f))}\n" for f in library))
    return text
