"""A drop-in with a misspelt hook name (register_extractor, singular)."""

import recengine


@recengine.hookimpl
def register_extractor(register):
    pass
