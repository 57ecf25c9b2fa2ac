"""A small client for the Subsonic API (Navidrome, gonic, Airsonic-Advanced, Ampache, supysonic).

Only what recengine needs: ``ping``, the song list (``search3`` with an empty query, paged),
``getStarred2``, and playlists (``getPlaylists``, ``getPlaylist``, ``createPlaylist``,
``deletePlaylist``). Token authentication (``t`` = md5(password + salt), ``s`` = salt, as the API
asks since 1.13) or an OpenSubsonic ``apiKey``; JSON responses (``f=json``). Written here rather
than taken from a library: six calls over ``urllib``, no dependency, and errors that say in one line
what to fix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

CLIENT = "recengine"
API_VERSION = "1.13.0"
PAGE = 500

#: Subsonic error codes and what the user should do about them
_HINTS = {
    40: "wrong user name or password (check sources[].user and password)",
    41: "this server does not take token authentication; set sources[].legacy_auth: true",
    42: "this server does not take this kind of authentication",
    43: "this server wants both a user and an API key",
    44: "the API key is not valid (check sources[].api_key)",
    50: "the user may not do this (playlist or starring rights)",
    70: "not found",
}


class SubsonicError(Exception):
    """The server refused a call or could not be reached; the message is one line."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Song:
    id: str
    path: str  # relative to the server's music folder (as the server reports it)
    title: str = ""
    artist: str = ""
    album: str = ""
    duration: float | None = None
    play_count: int | None = None
    played: str | None = None  # ISO time of the last play, where reported
    starred: str | None = None


class SubsonicClient:
    def __init__(self, url: str, user: str, *, password: str | None = None, api_key: str | None = None,
                 legacy_auth: bool = False, timeout_s: float = 20.0):
        if not (password or api_key):
            raise SubsonicError("a Subsonic source needs a password or an api_key")
        self.base = url.rstrip("/") + "/rest/"
        self.user, self.password, self.api_key = user, password, api_key
        self.legacy_auth = legacy_auth
        self.timeout_s = timeout_s
        self.server_version = ""

    def _auth(self) -> list[tuple[str, str]]:
        if self.api_key:
            return [("apiKey", self.api_key)]
        if self.legacy_auth:
            return [("u", self.user), ("p", "enc:" + self.password.encode().hex())]
        salt = secrets.token_hex(8)
        token = hashlib.md5((self.password + salt).encode()).hexdigest()  # noqa: S324 - the API's scheme
        return [("u", self.user), ("t", token), ("s", salt)]

    def call(self, method: str, params: list[tuple[str, Any]] = ()) -> dict[str, Any]:
        query = [("v", API_VERSION), ("c", CLIENT), ("f", "json"), *self._auth(),
                 *((k, str(v)) for k, v in params)]
        url = self.base + method + ".view?" + urllib.parse.urlencode(query)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:  # noqa: S310 - configured URL
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise SubsonicError(f"{self.base}{method}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SubsonicError(f"{self.base}: cannot reach the server ({reason})") from None
        except ValueError:
            raise SubsonicError(f"{self.base}{method}: the answer is not JSON (is this a Subsonic server?)") from None
        answer = body.get("subsonic-response") or {}
        self.server_version = str(answer.get("version") or "")
        if answer.get("status") != "ok":
            err = answer.get("error") or {}
            code = err.get("code")
            hint = _HINTS.get(code, err.get("message") or "unknown error")
            raise SubsonicError(f"{self.base}: error {code}: {hint}", code)
        return answer

    def ping(self) -> None:
        """Check the server and the credentials. A server older than API 1.13 (supysonic, old
        Subsonic) knows no token authentication: then the password is sent hex-encoded instead."""
        try:
            self.call("ping")
        except SubsonicError as exc:
            old = _version(self.server_version) < (1, 13)
            if self.api_key or self.legacy_auth or exc.code not in (10, 41) or not (old or exc.code == 41):
                raise
            log.warning("%s speaks Subsonic API %s, without token authentication: sending the password instead",
                        self.base, self.server_version or "< 1.13")
            self.legacy_auth = True
            self.call("ping")

    def songs(self) -> list[Song]:
        """Every song the server knows: ``search3`` with an empty query, page by page (Navidrome,
        gonic), else album by album (``getAlbumList2`` + ``getAlbum``) where the server wants a query."""
        out: list[Song] = []
        offset = 0
        while True:
            try:
                answer = self.call("search3", [("query", ""), ("artistCount", 0), ("albumCount", 0),
                                               ("songCount", PAGE), ("songOffset", offset)])
            except SubsonicError as exc:
                if exc.code != 10 or offset:  # 10: "a required parameter is missing" (the empty query)
                    raise
                return self._songs_by_album()
            page = (answer.get("searchResult3") or {}).get("song") or []
            out.extend(_song(s) for s in page)
            if len(page) < PAGE:
                return out
            offset += PAGE

    def _songs_by_album(self) -> list[Song]:
        out: list[Song] = []
        offset = 0
        while True:
            albums = (self.call("getAlbumList2", [("type", "alphabeticalByName"), ("size", PAGE),
                                                  ("offset", offset)]).get("albumList2") or {}).get("album") or []
            for album in albums:
                songs = (self.call("getAlbum", [("id", album["id"])]).get("album") or {}).get("song") or []
                out.extend(_song(s) for s in songs)
            if len(albums) < PAGE:
                return out
            offset += PAGE

    def starred(self) -> list[Song]:
        return [_song(s) for s in (self.call("getStarred2").get("starred2") or {}).get("song") or []]

    def playlists(self) -> dict[str, str]:
        """``{playlist id: name}`` of the user's playlists."""
        lists = (self.call("getPlaylists").get("playlists") or {}).get("playlist") or []
        return {str(p["id"]): p.get("name", "") for p in lists}

    def playlist_songs(self, playlist_id: str) -> list[str]:
        entries = (self.call("getPlaylist", [("id", playlist_id)]).get("playlist") or {}).get("entry") or []
        return [str(e["id"]) for e in entries]

    def save_playlist(self, name: str, song_ids: list[str], playlist_id: str | None = None) -> str:
        """Create playlist ``name``, or replace the songs of ``playlist_id``; returns its id."""
        params: list[tuple[str, Any]] = [("playlistId", playlist_id)] if playlist_id else [("name", name)]
        params += [("songId", s) for s in song_ids]
        answer = self.call("createPlaylist", params)
        created = answer.get("playlist")
        if playlist_id:
            return playlist_id
        if created and created.get("id"):
            return str(created["id"])
        # servers that answer createPlaylist with an empty body (API < 1.14): find it by name
        ids = [pid for pid, pname in self.playlists().items() if pname == name]
        if not ids:
            raise SubsonicError(f"{self.base}: createPlaylist said ok but no playlist {name!r} exists")
        return ids[-1]


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return (0,)


def _song(raw: dict[str, Any]) -> Song:
    return Song(id=str(raw["id"]), path=str(raw.get("path") or ""), title=str(raw.get("title") or ""),
                artist=str(raw.get("artist") or ""), album=str(raw.get("album") or ""),
                duration=raw.get("duration"), play_count=raw.get("playCount"), played=raw.get("played"),
                starred=raw.get("starred"))
