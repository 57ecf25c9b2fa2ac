"""Installing as self-hosters do: the wheel in a fresh venv, the config template, the systemd units,
``sd_notify``, and the container files.

The wheel test builds the wheel from this checkout, installs it with its dependencies into a new
venv (pip's configured indexes and its wheel cache: ~30 s here) and runs the commands a new user
types, with HOME, the XDG folders and TMPDIR in a temp folder and the working folder holding a
``config.yaml`` and a ``plugins/evil.py`` that must both be ignored.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recengine.config import build_config, core_options, read_yaml
from recengine.config.template import LIBRARY_LINE, config_template
from recengine.service import systemd

REPO = Path(__file__).resolve().parent.parent


def test_the_repository_config_is_the_shipped_template_and_it_validates(tmp_path):
    assert (REPO / "config.yaml").read_text() == config_template(), \
        "config.yaml and recengine/config/template.yaml differ: edit the template, then copy it over"
    assert config_template().count(LIBRARY_LINE) == 1
    path = tmp_path / "config.yaml"
    path.write_text(config_template(["/srv/music", "/srv/more music"]))
    config = build_config(path, core_options(), read_yaml(path))
    assert config["library.folders"] == ["/srv/music", "/srv/more music"]
    sections = {key.split(".")[0] for key in core_options().options}
    missing = sorted(s for s in sections if not re.search(rf"^#? ?{re.escape(s)}:", config_template(), re.M))
    assert not missing, f"the template does not mention {missing}"


# --- systemd ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["user", "system"])
def test_unit_files_carry_the_interpreter_and_pass_systemd_analyze_verify(tmp_path, kind):
    unit = systemd.render_unit(kind, systemd.exec_start(tmp_path / "my config.yaml"))
    exec_line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_line == f'ExecStart={sys.executable} -m recengine --config "{tmp_path}/my config.yaml" daemon'
    assert "Type=notify" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    if kind == "user":
        assert "loginctl enable-linger" in unit and "remote-fs" not in unit and "%h/recengine" not in unit
    else:
        for line in ("User=recengine", "StateDirectory=recengine", "ConfigurationDirectory=recengine",
                     "ProtectSystem=strict", "NoNewPrivileges=yes", "ReadOnlyPaths=-/srv/music"):
            assert line in unit.splitlines()
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt install systemd)")
    folder = tmp_path / "units"
    folder.mkdir()
    (folder / "recengine.service").write_text(unit)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    scope = ["--user"] if kind == "user" else []
    proc = subprocess.run(["systemd-analyze", *scope, "verify", str(folder / "recengine.service")],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    ours = [line for line in proc.stderr.splitlines() if "recengine.service" in line]
    assert proc.returncode == 0 and not ours, proc.stderr


def test_service_install_writes_the_user_unit_and_tells_about_linger(tmp_path, monkeypatch, capsys):
    from recengine.cli import main

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert main(["service", "install", "--user"]) == 0
    target = tmp_path / "xdg" / "systemd" / "user" / "recengine.service"
    out = capsys.readouterr().out
    assert f"wrote {target}" in out and "systemctl --user enable --now recengine" in out
    assert f"ExecStart={sys.executable} -m recengine daemon" in target.read_text()
    if not (Path("/var/lib/systemd/linger") / os.environ.get("USER", "root")).exists():
        assert "loginctl enable-linger" in out
    assert main(["service", "install", "--user"]) == 0
    assert f"replaced {target}" in capsys.readouterr().out
    assert main(["service", "install", "--system", "--print"]) == 0
    assert "User=recengine" in capsys.readouterr().out


def test_sd_notify_sends_datagrams_to_the_notify_socket(tmp_path):
    assert systemd.notify("READY=1", {}) is False  # not under systemd: nothing to do
    for address in (str(tmp_path / "notify"), f"@recengine-test-{os.getpid()}"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
            server.bind(address.replace("@", "\0", 1) if address.startswith("@") else address)
            server.settimeout(5)
            env = {"NOTIFY_SOCKET": address}
            assert systemd.notify_ready(env) and server.recv(256) == b"READY=1"
            assert systemd.notify_reloading(env)
            assert re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=\d+", server.recv(256))
            assert systemd.notify_stopping(env) and server.recv(256) == b"STOPPING=1"
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False


# --- the container ---------------------------------------------------------------------------------


def test_dockerfile_copies_what_exists_and_compose_checks_health():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM debian:\S+-slim AS build$", dockerfile, re.M)
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for source in sources.split():
            assert (REPO / source).exists(), f"Dockerfile copies {source}, which does not exist"
            assert source not in ignored, f"{source} is copied but .dockerignore leaves it out"
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    service = compose["services"]["recengine"]
    assert "/api/v1/health" in " ".join(service["healthcheck"]["test"])
    assert any(volume.endswith(":ro") for volume in service["volumes"])
    assert {"PUID", "PGID"} <= set(service["environment"])


# --- the wheel in a fresh venv ---------------------------------------------------------------------


def run(argv, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_the_wheel_installs_and_runs_from_any_folder(tmp_path):
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)])
    [wheel] = dist.glob("recengine-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])  # this pip installs into it (faster)
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
         "--disable-pip-version-check", str(wheel)])
    share = venv / "share" / "recengine" / "examples" / "plugins"
    assert sorted(p.name for p in share.glob("*.py")) == sorted(p.name for p in (REPO / "plugins/examples").glob("*.py"))
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert (next(site.glob("recengine-*.dist-info")) / "licenses" / "LICENSE").read_text().startswith("MIT License")

    home, work = tmp_path / "home", tmp_path / "elsewhere"
    (home / "Music").mkdir(parents=True)
    (work / "plugins").mkdir(parents=True)
    (work / "plugins" / "evil.py").write_text(f"open({str(tmp_path / 'evil-ran')!r}, 'w').close()\n")
    (work / "config.yaml").write_text("this: is not read\n")
    (tmp_path / "tmp").mkdir()
    env = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "HOME": str(home), "TMPDIR": str(tmp_path / "tmp"),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local" / "share"),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".local" / "state"),
           "LANG": "C.UTF-8"}

    def recengine(*args: str) -> subprocess.CompletedProcess:
        return run(["recengine", *args], cwd=work, env=env)

    user_config = home / ".config" / "recengine" / "config.yaml"
    assert recengine("config", "init").stdout.strip() == str(user_config)
    assert user_config.read_text() == config_template() and user_config.stat().st_mode & 0o777 == 0o600
    assert recengine("config", "path").stdout.strip() == str(user_config)
    assert "tracks like" in recengine("demo", "--tracks", "2").stdout
    doctor = recengine("doctor").stdout
    assert f"ok    config: {user_config} (from $XDG_CONFIG_HOME)" in doctor
    assert f"library folder {home / 'Music'}: reachable" in doctor and "FAIL" not in doctor
    assert "evil" not in recengine("plugins").stdout
    assert not (tmp_path / "evil-ran").exists(), "plugins/evil.py in the working folder was imported"
    unit = recengine("service", "install", "--user").stdout
    assert str(home / ".config" / "systemd" / "user" / "recengine.service") in unit
    assert f"ExecStart={venv / 'bin' / 'python'} -m recengine daemon" in (
        home / ".config" / "systemd" / "user" / "recengine.service").read_text()


# --- logging ---------------------------------------------------------------------------------------


CHATTY = '''import logging
import recengine

@recengine.hookimpl
def register_extractors(register):
    for level in ("debug", "info", "warning"):
        getattr(logging.getLogger("recengine.chatty"), level)("chatty " + level)
'''


@pytest.mark.parametrize("level", ["debug", "warning"])
def test_log_level_is_obeyed_and_lines_carry_the_time_outside_the_journal(tmp_path, level):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "chatty.py").write_text(CHATTY)
    (tmp_path / "music").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(f"library: {{folders: [music]}}\ndata_dir: data\nlog_level: {level}\n")
    shown = {"debug": ["debug", "info", "warning"], "warning": ["warning"]}[level]
    for journal in (False, True):
        log = tmp_path / f"stderr-{journal}"
        with open(log, "w") as err:
            st = os.fstat(err.fileno())  # what systemd puts in JOURNAL_STREAM: stderr is the journal
            env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
            if not journal:
                env.pop("JOURNAL_STREAM")
            subprocess.run([sys.executable, "-m", "recengine", "--config", str(config), "scan"], stderr=err,
                           stdout=subprocess.DEVNULL, env=env, timeout=120, check=True)
        lines = [line for line in log.read_text().splitlines() if "chatty" in line]
        assert [line.rsplit(" ", 1)[1] for line in lines] == shown
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
        for line in lines:
            assert bool(re.match(stamp, line)) is not journal, line
