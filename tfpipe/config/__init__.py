"""Configuration: dataclasses per stage, YAML files and `--set section.key=value` overrides."""

from tfpipe.config.core import ConfigError, apply_overrides, from_dict, load_config, save_config, to_dict
from tfpipe.config.schemas import (
    WIKITEXT_HEADING_REGEX,
    WIKITEXT_TITLE_REGEX,
    AugmentConfig,
    CleaningConfig,
    Config,
    PipelineConfig,
    PretrainingConfig,
    ReaderConfig,
    SpacyConfig,
    TokenizerConfig,
    VocabConfig,
)

__all__ = [
    "ConfigError", "apply_overrides", "from_dict", "load_config", "save_config", "to_dict", "Config",
    "ReaderConfig", "CleaningConfig", "SpacyConfig", "TokenizerConfig", "VocabConfig", "PretrainingConfig",
    "PipelineConfig", "AugmentConfig", "WIKITEXT_TITLE_REGEX", "WIKITEXT_HEADING_REGEX",
]
