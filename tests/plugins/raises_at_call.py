"""A drop-in whose hooks raise when called."""

import recengine


@recengine.hookimpl
def register_extractors(register):
    raise ValueError("cannot register today")


@recengine.hookimpl
def track_added(track):
    raise RuntimeError("track_added blew up")
