"""Installing and checking a set-up: ``config init``, ``config path``, ``service install``, ``doctor``."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from recengine.cli.errors import EXIT_FAILURE, EXIT_OK, CommandFailed
from recengine.cli.setup import cmd_config_check
from recengine.config.loader import init_target, locate_config
from recengine.config.template import config_template

LINGER_DIR = Path("/var/lib/systemd/linger")


def cmd_config(args) -> int:
    """``config init|path|check|show``."""
    if args.action == "init":
        return config_init(args)
    if args.action == "path":
        return config_path(args)
    return cmd_config_check(args)


def config_init(args) -> int:
    """Write the commented template where the config is looked for first; never over a file."""
    target = init_target(args.config).absolute()
    library = [str(Path(f).expanduser().absolute()) for f in args.library or ()]
    target.parent.mkdir(parents=True, exist_ok=True)
    try:  # 0600: the file may come to hold a password
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CommandFailed(f"{target} exists and is left as it is: edit it, or move it away to start "
                            "afresh") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(config_template(library))
    print(target)
    if not library:
        print("next: set library.folders in it (or run `config init --library DIR` on a new file), then "
              "`recengine config check` and `recengine scan`", file=sys.stderr)
    return EXIT_OK


def config_path(args) -> int:
    """Print the config file in use; exit 1 when there is none (the built-in defaults)."""
    location = locate_config(args.config)
    if location.path is None:
        print(f"no config file: the built-in defaults are in use; `recengine config init` writes "
              f"{init_target(None)}", file=sys.stderr)
        return EXIT_FAILURE
    print(location.path.absolute())
    missing = "" if location.path.exists() else ", which does not exist"
    print(f"(from {location.rule}{missing})", file=sys.stderr)
    return EXIT_OK


def cmd_service(args) -> int:
    """``service install --user|--system [--print]``: the unit file with this interpreter's path."""
    from recengine.service import systemd

    kind = "system" if args.system else "user"
    config = Path(args.config) if args.config else None
    unit = systemd.render_unit(kind, systemd.exec_start(config))
    if args.print:
        print(unit, end="")
        return EXIT_OK
    folder = systemd.SYSTEM_UNIT_DIR if kind == "system" else systemd.user_unit_dir()
    target = folder / "recengine.service"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        replaced = target.exists()
        target.write_text(unit)
    except PermissionError as exc:
        raise CommandFailed(f"cannot write {target} ({exc.strerror}): run it as root, or use --print and "
                            "put the unit there yourself") from None
    print(f"{'replaced' if replaced else 'wrote'} {target}")
    print("next:" + "".join(f"\n  {line}" for line in _next_steps(kind)))
    return EXIT_OK


def _next_steps(kind: str) -> list[str]:
    if kind == "system":
        return ["useradd --system --home-dir /var/lib/recengine --shell /usr/sbin/nologin recengine",
                "recengine --config /etc/recengine/config.yaml config init --library /srv/music",
                "systemctl daemon-reload && systemctl enable --now recengine",
                "journalctl -u recengine -f"]
    user = getpass.getuser()
    steps = ["systemctl --user daemon-reload && systemctl --user enable --now recengine",
             "journalctl --user -u recengine -f"]
    if not (LINGER_DIR / user).exists():
        steps.append(f"sudo loginctl enable-linger {user}   # keep it running while you are logged out "
                     "(a headless box)")
    return steps


def cmd_doctor(args) -> int:
    """One line per check (:mod:`recengine.service.doctor`); exit 1 if any fails."""
    from recengine.config import ConfigError
    from recengine.service.doctor import Check, run_checks

    location = locate_config(args.config)
    where = f"{location.path.absolute()} (from {location.rule})" if location.path else "none: the built-in defaults"
    try:
        engine = args.open_engine(args.config)
    except ConfigError as exc:
        print(Check("config", False, str(exc), "edit the file (`recengine config check` after)").line())
        return EXIT_FAILURE
    failed = False
    with engine:
        for check in [Check("config", True, where), *run_checks(engine)]:
            print(check.line(), flush=True)
            failed |= not check.ok
    return EXIT_FAILURE if failed else EXIT_OK
