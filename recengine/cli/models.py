"""``recengine models install|list``: the neural models the neural extractor plugins need."""

from __future__ import annotations

import sys
from pathlib import Path

from recengine.cli.errors import EXIT_OK, CommandFailed
from recengine.config import config_path
from recengine.neural import install
from recengine.plugin.boot import load_settings


def _models_dir(args) -> Path:
    config, _ = load_settings(config_path(args.config), report_failures=False)
    return Path(config["models_dir"]) if config["models_dir"] else install.default_models_dir()


def cmd_models(args) -> int:
    models_dir = _models_dir(args)
    if args.action == "list":
        installed = set(install.installed_models(models_dir))
        for model in install.MODELS:
            print(f"{model:12} {'installed' if model in installed else 'not installed'}")
        print(f"models folder: {models_dir}", file=sys.stderr)
        return EXIT_OK
    try:
        done = install.install_models(models_dir, progress=lambda line: print(line, file=sys.stderr))
    except install.ModelInstallError as exc:
        raise CommandFailed(str(exc)) from exc
    print(f"{len(done)} model files ready in {models_dir}; the musicnn extractor is enabled "
          "(run `recengine scan` to analyse the library with it)")
    return EXIT_OK
