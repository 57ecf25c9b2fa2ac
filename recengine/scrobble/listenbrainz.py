"""The ListenBrainz submission API, as scrobblers speak it, answered from recengine's catalog.

Navidrome (``ListenBrainz.BaseURL``), multi-scrobbler, Pano Scrobbler and Jellyfin's ListenBrainz
plugin send ``POST /1/submit-listens`` with ``Authorization: Token <t>``; recengine gives each
user a token (``recengine users token USER``). Implemented: ``submit-listens`` (``single``,
``playing_now``, ``import``), ``validate-token``, ``feedback/recording-feedback`` (score 1 like,
-1 dislike, 0 unlike) and ``user/<name>/listens`` (the token's own listens, for scrobblers that
check what they sent). Listens are matched to tracks by recording MBID where the file's tags
carry one, else by normalised artist + title (album breaking ties): :class:`recengine.importers.Matcher`,
the matcher of file imports too;
listens that match nothing are kept and matched again when tracks arrive. ``playing_now`` is not
a play. Limits as ListenBrainz keeps them (a listen of at most 10,240 bytes, timestamps from
2002-10-01 on) except the listens per request: 10,000 (ListenBrainz: 1,000), so a whole export
goes in one ``import``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from recengine.catalog.listens import PendingListen
from recengine.importers import FEEDBACK_EVENTS, Listen, Matcher, mbid_of
from recengine.models import HistoryEvent

if TYPE_CHECKING:
    from recengine.catalog import Catalog

LISTEN_TYPES = ("single", "playing_now", "import")
MAX_LISTEN_BYTES = 10_240
MAX_LISTENS_PER_REQUEST = 10_000
MAX_LISTENS_PER_GET = 1000  # as ListenBrainz
MAX_BODY_BYTES = 16 * 1024 * 1024
LISTEN_MINIMUM_TS = 1_033_430_400  # 2002-10-01, as ListenBrainz
FEEDBACK_KINDS = FEEDBACK_EVENTS  # 1 like, -1 dislike, 0 unlike: as the feedback of file imports


class ScrobbleError(Exception):
    """A request ListenBrainz would refuse: ``status`` (400, 401, 404, 413) and a one-line reason."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class SubmitResult:
    accepted: int
    matched: int
    pending: int


@dataclass(frozen=True)
class _Parsed:
    listen: Listen
    mbid: str | None
    duration: float | None


def _text(value: object, where: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ScrobbleError(400, f"{where}: expected a non-empty string")
    if len(value) > 1000:
        raise ScrobbleError(400, f"{where}: longer than 1000 characters")
    return value.strip()


def _parse_listen(raw: object, i: int, *, needs_time: bool, now: float) -> _Parsed:
    where = f"payload[{i}]"
    if not isinstance(raw, dict):
        raise ScrobbleError(400, f"{where}: expected a listen object")
    if len(json.dumps(raw)) > MAX_LISTEN_BYTES:
        raise ScrobbleError(400, f"{where}: a listen may be at most {MAX_LISTEN_BYTES} bytes")
    meta = raw.get("track_metadata")
    if not isinstance(meta, dict):
        raise ScrobbleError(400, f"{where}.track_metadata: missing")
    artist = _text(meta.get("artist_name"), f"{where}.track_metadata.artist_name")
    title = _text(meta.get("track_name"), f"{where}.track_metadata.track_name")
    album = _text(meta.get("release_name"), f"{where}.track_metadata.release_name", required=False)
    at = raw.get("listened_at")
    if needs_time:
        if isinstance(at, bool) or not isinstance(at, int | float):
            raise ScrobbleError(400, f"{where}.listened_at: expected unix seconds")
        if not LISTEN_MINIMUM_TS <= at <= now + 86_400:
            raise ScrobbleError(400, f"{where}.listened_at: {at} is before 2002-10-01 or in the future")
    info = meta.get("additional_info") if isinstance(meta.get("additional_info"), dict) else {}
    mbid = mbid_of(info.get("recording_mbid")) if isinstance(info.get("recording_mbid"), str) else None
    duration = None
    if isinstance(info.get("duration_ms"), int | float) and not isinstance(info.get("duration_ms"), bool):
        duration = float(info["duration_ms"]) / 1000.0
    elif isinstance(info.get("duration"), int | float) and not isinstance(info.get("duration"), bool):
        duration = float(info["duration"])
    return _Parsed(Listen(artist, title, album, float(at) if needs_time else now, mbid=mbid), mbid, duration)


def _listen_json(user: str, at: float, artist: str | None, title: str | None, album: str | None, mbid: str | None,
                 duration: float | None, relpath: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {"submission_client": "recengine"}
    if mbid:
        info["recording_mbid"] = mbid
    if duration:
        info["duration_ms"] = int(duration * 1000)
    meta = {"artist_name": artist or "", "track_name": title or PurePosixPath(relpath or "").stem,
            "additional_info": info}
    if album:
        meta["release_name"] = album
    return {"listened_at": int(at), "user_name": user, "track_metadata": meta}


class ListenBrainzService:
    """Tokens, submissions and feedback over the catalog; ``record_events`` commits history."""

    def __init__(self, catalog: Catalog, record_events: Callable[[list[HistoryEvent]], object]):
        self.catalog = catalog
        self.record_events = record_events

    # tokens -----------------------------------------------------------------------------------

    def issue_token(self, user: str) -> str:
        """A new scrobble token for ``user`` (the old one stops working)."""
        token = secrets.token_urlsafe(24)
        self.catalog.set_scrobble_token(user, token)
        return token

    def user_of(self, authorization: str | None) -> str:
        """The user of an ``Authorization: Token <t>`` header; ScrobbleError(401) otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "token" or not token.strip():
            raise ScrobbleError(401, "missing Authorization: Token <your recengine scrobble token>")
        user = self.catalog.user_of_token(token.strip())
        if user is None:
            raise ScrobbleError(401, "invalid token (recengine users token USER makes one)")
        return user

    # submissions ------------------------------------------------------------------------------

    def submit(self, user: str, body: Any, *, now: float | None = None) -> SubmitResult:
        now = time.time() if now is None else now
        if not isinstance(body, dict):
            raise ScrobbleError(400, "expected a JSON object with listen_type and payload")
        kind = body.get("listen_type")
        if kind not in LISTEN_TYPES:
            raise ScrobbleError(400, f"listen_type: expected one of {', '.join(LISTEN_TYPES)}, got {kind!r}")
        payload = body.get("payload")
        if not isinstance(payload, list) or not payload:
            raise ScrobbleError(400, "payload: expected a non-empty list of listens")
        if kind in ("single", "playing_now") and len(payload) != 1:
            raise ScrobbleError(400, f"payload: a {kind} submission carries exactly one listen")
        if len(payload) > MAX_LISTENS_PER_REQUEST:
            raise ScrobbleError(400, f"payload: at most {MAX_LISTENS_PER_REQUEST} listens per request")
        parsed = [_parse_listen(raw, i, needs_time=kind != "playing_now", now=now) for i, raw in enumerate(payload)]
        if kind == "playing_now":
            return SubmitResult(accepted=1, matched=0, pending=0)  # not a play
        return self._store(user, parsed)

    def _store(self, user: str, parsed: list[_Parsed]) -> SubmitResult:
        by_mbid = self.catalog.track_ids_by_mbid() if any(p.mbid for p in parsed) else {}
        matcher = Matcher(self.catalog.tracks(present=True), by_mbid)
        events, pending = [], []
        for p in parsed:
            track_id = matcher.match(p.listen)
            if track_id is None:
                pending.append(PendingListen(0, user, p.listen.artist, p.listen.title, p.listen.album, p.mbid,
                                             p.duration, p.listen.at, "listenbrainz"))
            else:
                events.append(HistoryEvent(user, track_id, "play", at=p.listen.at, listened_s=p.duration,
                                           source="listenbrainz"))
        if events:
            self.record_events(events)
        if pending:
            self.catalog.add_pending_listens(pending)
        return SubmitResult(accepted=len(parsed), matched=len(events), pending=len(pending))

    def match_pending(self) -> int:
        """Try the kept listens again (after tracks arrived); returns how many became plays."""
        pending = self.catalog.pending_listens()
        if not pending:
            return 0
        matcher = Matcher(self.catalog.tracks(present=True), self.catalog.track_ids_by_mbid())
        events, done = [], []
        for p in pending:
            track_id = matcher.match(Listen(p.artist, p.title, p.album, p.at, mbid=p.mbid))
            if track_id is not None:
                events.append(HistoryEvent(p.user, track_id, "play", at=p.at, listened_s=p.duration,
                                           source=p.source))
                done.append(p.listen_id)
        if events:
            self.record_events(events)
            self.catalog.drop_pending_listens(done)
        return len(events)

    # reading listens back -----------------------------------------------------------------------

    def listens(self, user: str, path_user: str, params: Mapping[str, str]) -> dict[str, Any]:
        """``GET /1/user/<name>/listens`` (scrobblers read it to skip what they sent already, e.g.
        multi-scrobbler): the token's own plays and kept listens, newest first; ``min_ts`` and
        ``max_ts`` exclusive, ``count`` 25 by default, at most :data:`MAX_LISTENS_PER_GET`. A
        token reads only its own user's listens (ListenBrainz's are public; recengine's are not)."""
        if path_user != user:
            raise ScrobbleError(403, f"this token belongs to {user!r}: it can read only that user's listens")

        def number(name: str) -> float | None:
            raw = params.get(name)
            if raw is None:
                return None
            try:
                return float(raw)
            except ValueError:
                raise ScrobbleError(400, f"{name}: expected a number, got {raw!r}") from None

        count = number("count")
        count = 25 if count is None else int(count)
        if not 1 <= count <= MAX_LISTENS_PER_GET:
            raise ScrobbleError(400, f"count: expected 1 to {MAX_LISTENS_PER_GET}")
        rows = self.catalog.user_listens(user, after=number("min_ts"), before=number("max_ts"), count=count)
        oldest, latest = self.catalog.user_listen_span(user)
        listens = [_listen_json(user, *row) for row in rows]
        return {"payload": {"count": len(listens), "listens": listens, "user_id": user,
                            "latest_listen_ts": int(latest or 0), "oldest_listen_ts": int(oldest or 0)}}

    # feedback ---------------------------------------------------------------------------------

    def feedback(self, user: str, body: Any, *, now: float | None = None) -> HistoryEvent:
        if not isinstance(body, dict):
            raise ScrobbleError(400, "expected a JSON object with recording_mbid and score")
        score = body.get("score")
        if isinstance(score, bool) or score not in FEEDBACK_KINDS:
            raise ScrobbleError(400, "score: expected 1 (love), -1 (hate) or 0 (remove)")
        mbid = body.get("recording_mbid")
        if not isinstance(mbid, str) or not mbid:
            raise ScrobbleError(400, "recording_mbid: required (recording_msid alone cannot be matched)")
        track_id = self.catalog.track_ids_by_mbid().get(mbid.strip().lower())
        if track_id is None:
            raise ScrobbleError(404, f"no library track carries recording MBID {mbid}")
        event = HistoryEvent(user, track_id, FEEDBACK_KINDS[score], at=time.time() if now is None else now,
                             source="listenbrainz")
        self.record_events([event])
        return event
