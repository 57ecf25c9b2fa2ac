"""``recengine users token USER``: a scrobble token for a media server to send USER's listens."""

from __future__ import annotations

import sys

from recengine.cli.errors import EXIT_OK, UsageError


def cmd_users(engine, args) -> int:
    user = (args.user or "").strip()
    if not user:
        raise UsageError("users token: name the user")
    token = engine.listenbrainz.issue_token(user)
    print(token)
    print(f"scrobble token for {user} (any older one stops working). Point the ListenBrainz setting of your "
          f"media server or scrobbler at http://<this host>:{engine.config['http.port']}/ with this token; "
          "see 'Listens from your media server' in the README", file=sys.stderr)
    return EXIT_OK
