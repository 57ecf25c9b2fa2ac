"""Configuration: declared options (defaults in code), strict YAML reading, validation, the Config."""

from recengine.config.errors import ConfigError, unknown_key_error
from recengine.config.loader import build_config, config_path
from recengine.config.model import REDACTED, Config
from recengine.config.options import AUDIO_EXTENSIONS, Option, OptionSpec, core_options
from recengine.config.validation import expand_env, validate
from recengine.config.yaml_file import MAX_CONFIG_BYTES, read_yaml

__all__ = [
    "AUDIO_EXTENSIONS", "MAX_CONFIG_BYTES", "REDACTED", "Config", "ConfigError", "Option", "OptionSpec",
    "build_config", "config_path", "core_options", "expand_env", "read_yaml", "unknown_key_error", "validate",
]
