"""The ``local`` playback backend: plays on this machine's sound card.

Player: ``ffplay -nodisp -autoexit -loglevel error PATH`` when ``ffplay`` is on ``PATH`` (it comes
with ffmpeg; the ``imageio-ffmpeg`` wheel does not ship it), else pydub's playback
(``simpleaudio`` or ``pyaudio``, run in a child process ``python -m
recengine.default_plugins.local_backend PATH`` so that it can be stopped). One process per
track, from a queue on a background thread (:class:`recengine.playback.process_queue.ProcessQueuePlayer`).

API (beyond the backend protocol ``name`` / ``play(tracks, mode, record) -> int``):

- ``play`` returns at once; ``wait(timeout=None)`` blocks until the queue is played out;
- ``now_playing() -> Track | None``, ``skip()``, ``stop()``, ``close()``;
- ``check()`` raises :class:`BackendUnavailable` (also raised by ``play``) with a one-line
  reason when there is no player program or no audio device: no ALSA card
  (``/proc/asound/cards`` missing or "no soundcards") and no sound server (``PULSE_SERVER``,
  ``$XDG_RUNTIME_DIR/pulse/native`` or ``pipewire-0``). ``SDL_AUDIODRIVER`` set (e.g. ``dummy``
  for silent playback in tests) counts as a device for ffplay.

Plays and skips follow :mod:`recengine.playback.tracker`: a play after half the track or 4 minutes, a
track played to its end is a play, stopping or skipping it before 30 s is a skip. ffplay exits 0
even when it could not open the audio device, so an exit 0 with an error on stderr, or long
before the play threshold, records nothing (logged as a warning).

Config (``plugins.local.*``): ``user`` (whose history, default ``default``), ``player``
(``auto``, ``ffplay`` or ``pydub``).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from recengine.models import Track
from recengine.playback.errors import BackendUnavailable
from recengine.playback.process_queue import ProcessQueuePlayer
from recengine.playback.tracker import PlayTracker
from recengine.plugin.spec import hookimpl

log = logging.getLogger(__name__)

__all__ = ["BackendUnavailable", "LocalBackend", "audio_device_problem"]

ASOUND_CARDS = Path("/proc/asound/cards")
_HINT = "use the mpd or command backend, or set SDL_AUDIODRIVER=dummy for silent playback"


def audio_device_problem(env: Mapping[str, str] | None = None, cards: Path = ASOUND_CARDS) -> str | None:
    """Why this box has no usable audio output, or None when it seems to have one."""
    env = os.environ if env is None else env
    if env.get("SDL_AUDIODRIVER") or env.get("PULSE_SERVER"):
        return None
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and any((Path(runtime) / name).exists() for name in ("pulse/native", "pipewire-0")):
        return None
    try:
        text = cards.read_text(errors="replace")
    except OSError:
        return f"no sound card: {cards} is missing (no ALSA driver; headless box?)"
    if not text.strip() or "no soundcards" in text.lower():
        return f"no sound card: {cards} says no soundcards"
    return None


def _pydub_playback_module() -> str | None:
    for module in ("simpleaudio", "pyaudio"):
        try:
            __import__(module)
        except Exception:  # ImportError, or a broken native library
            continue
        return module
    return None


class LocalBackend(ProcessQueuePlayer):
    """Plays tracks on this machine through ffplay or pydub; see the module docstring."""

    name = "local"
    source = "local"

    def __init__(
        self,
        *,
        user: str = "default",
        player: str = "auto",
        env: Mapping[str, str] | None = None,
        cards: Path = ASOUND_CARDS,
    ):
        super().__init__(user=user)
        if player not in ("auto", "ffplay", "pydub"):
            raise ValueError(f"player must be auto, ffplay or pydub, got {player!r}")
        self.player = player
        self.env = env
        self.cards = cards

    def _ffplay(self) -> str | None:
        path = (self.env or os.environ).get("PATH")
        return shutil.which("ffplay", path=path)

    def choose_player(self) -> tuple[str, str]:
        """``("ffplay", path)`` or ``("pydub", module)``; raises :class:`BackendUnavailable`."""
        ffplay = self._ffplay() if self.player in ("auto", "ffplay") else None
        if ffplay:
            return "ffplay", ffplay
        module = _pydub_playback_module() if self.player in ("auto", "pydub") else None
        if module:
            return "pydub", module
        wanted = {
            "auto": "ffplay or pydub playback (simpleaudio/pyaudio)",
            "ffplay": "ffplay",
            "pydub": "pydub playback (simpleaudio/pyaudio)",
        }[self.player]
        raise BackendUnavailable(
            f"local backend: no player: {wanted} not found; install ffmpeg (ffplay), "
            "or use the mpd or command backend"
        )

    def check(self) -> None:
        kind, _ = self.choose_player()
        env = os.environ if self.env is None else self.env
        if kind == "pydub":
            env = {k: v for k, v in env.items() if k != "SDL_AUDIODRIVER"}  # SDL is ffplay's
        problem = audio_device_problem(env, self.cards)
        if problem:
            raise BackendUnavailable(f"local backend: {problem}; {_HINT}")

    def argv(self, tracks: list[Track]) -> list[str]:
        kind, what = self.choose_player()
        path = os.fspath(tracks[0].path)
        if kind == "ffplay":
            return [what, "-nodisp", "-autoexit", "-loglevel", "error", "-nostats", "--", path]
        return [sys.executable, "-m", __name__, path]

    def popen_env(self) -> dict[str, str] | None:
        return None if self.env is None else dict(self.env)

    def exited_ok(self, tracker: PlayTracker, stderr_tail: str) -> None:
        track = tracker.track
        if stderr_tail and any(w in stderr_tail.lower() for w in ("failed", "error", "cannot", "no such")):
            log.warning(
                "local backend: %s: player reported: %s; not counted", track and track.relpath, stderr_tail
            )
            tracker.abandon()
        elif (
            tracker.duration is not None and not tracker.played and tracker.listened < tracker.threshold * 0.9
        ):
            log.warning(
                "local backend: %s: player ended after %.1f s of %.0f s; not counted",
                track and track.relpath,
                tracker.listened,
                tracker.duration,
            )
            tracker.abandon()
        else:
            tracker.finish()


@hookimpl
def addoption(spec):
    spec.add("plugins.local.user", "str", "default", "whose history the local backend's plays go to")
    spec.add(
        "plugins.local.player",
        "str",
        "auto",
        "auto (ffplay, else pydub), ffplay or pydub",
        choices=("auto", "ffplay", "pydub"),
    )


@hookimpl
def register_backends(register, config):
    get = config.get if config is not None else (lambda key, default=None: default)
    register(
        LocalBackend(user=get("plugins.local.user", "default"), player=get("plugins.local.player", "auto"))
    )


def _main(argv: list[str]) -> int:  # the pydub player child process
    if len(argv) != 1:
        print("usage: python -m recengine.default_plugins.local_backend AUDIO_FILE", file=sys.stderr)
        return 2
    from pydub import AudioSegment
    from pydub.playback import play

    from recengine.analysis.decode import find_ffmpeg

    AudioSegment.converter = find_ffmpeg()
    play(AudioSegment.from_file(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
