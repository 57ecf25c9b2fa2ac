"""``recengine doctor``: every check passes on a healthy set-up; each broken part fails with its fix."""

from __future__ import annotations

import socket

from recengine.cli import main
from recengine.engine import Engine
from recengine.service.doctor import run_checks


def write_config(tmp_path, *, folders: str = "[music]", data_dir: str = "data",
                 outputs: str = "{navidrome: {dir: music/Playlists}}", extra: str = "") -> str:
    (tmp_path / "music" / "Album").mkdir(parents=True, exist_ok=True)
    config = tmp_path / "config.yaml"
    config.write_text(f"library: {{folders: {folders}}}\ndata_dir: {data_dir}\noutputs: {outputs}\n{extra}")
    return str(config)


def lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_healthy_set_up_passes_every_check(tmp_path, capsys):
    assert main(["--config", write_config(tmp_path), "doctor"]) == 0
    out = lines(capsys)
    assert all(line.startswith("ok  ") for line in out), out
    names = [line.split(":")[0][6:] for line in out]
    assert names[:3] == ["config", "ffmpeg", "data dir"]
    for name in (f"library folder {tmp_path / 'music'}", "inotify watches", "catalog", "playlist output navidrome",
                 "backend", "api token"):
        assert name in names
    assert f"{tmp_path / 'data'} (to be created in {tmp_path})" in "\n".join(out)
    assert "local: watched with inotify" in "\n".join(out)


def test_healthy_after_a_scan_reports_the_catalog_and_the_index(tmp_path, capsys, styled_library):
    config = tmp_path / "config.yaml"
    config.write_text(f"library: {{folders: ['{styled_library}']}}\ndata_dir: data\nscan: {{workers: 2}}\n")
    with Engine.open(config) as engine:
        engine.scan()
    assert main(["--config", str(config), "doctor"]) == 0
    out = "\n".join(lines(capsys))
    assert "integrity ok" in out and "tracks analysed" in out
    assert "ok    index: generation" in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_broken_set_up_fails_each_part_with_its_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RECENGINE_API_TOKEN", raising=False)
    (tmp_path / "a-file").write_text("")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "catalog.db").write_bytes(b"this is not a database" * 100)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "shared.py").write_text("")
    (plugins / "shared.py").chmod(0o666)
    config = write_config(tmp_path, folders="[music, /nowhere/music]", outputs="{jellyfin: {dir: a-file/playlists}}",
                          extra=f"backend: mpd\nplugins: {{mpd: {{host: 127.0.0.1, port: {free_port()}, timeout_s: 1}}}}\n"
                                "http: {host: 0.0.0.0}\n")
    assert main(["--config", config, "doctor"]) == 1
    failed = {line.split(":")[0][6:]: line for line in lines(capsys) if line.startswith("FAIL")}
    assert set(failed) == {"plugin plugins", "library folder /nowhere/music", "catalog",
                           "playlist output jellyfin", "backend mpd", "api token"}
    assert all("  -> fix: " in line for line in failed.values())
    assert f"chmod go-w {plugins / 'shared.py'}" in failed["plugin plugins"]
    assert "set library.folders[1] in" in failed["library folder /nowhere/music"]
    assert "restore a backup" in failed["catalog"]
    assert "is not a folder" in failed["playlist output jellyfin"]
    assert "cannot connect to MPD" in failed["backend mpd"] and "MPD_HOST" in failed["backend mpd"]
    assert "set RECENGINE_API_TOKEN" in failed["api token"]


def test_data_dir_that_cannot_be_made_and_too_few_inotify_watches(tmp_path):
    (tmp_path / "a-file").write_text("")
    config = write_config(tmp_path, data_dir="a-file/data")
    limit = tmp_path / "max_user_watches"
    limit.write_text("1\n")
    with Engine.open(config) as engine:
        checks = {c.name: c for c in run_checks(engine, {}, inotify_limit=limit)}
    assert not checks["data dir"].ok and "is not a folder" in checks["data dir"].detail
    watches = checks["inotify watches"]
    assert not watches.ok and "folders to watch: 2, limit 1" in watches.detail
    assert "fs.inotify.max_user_watches" in watches.fix


def test_a_config_that_does_not_validate_is_a_failing_line(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("library:\n  folder: [/srv/music]\n")
    assert main(["--config", str(config), "doctor"]) == 1
    [line] = lines(capsys)
    assert line.startswith("FAIL  config: ") and "did you mean 'folders'" in line and "-> fix: " in line
