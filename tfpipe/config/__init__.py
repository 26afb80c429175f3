"""Configuration: dataclasses per stage, YAML files and `--set section.key=value` overrides."""

from tfpipe.config.core import ConfigError, apply_overrides, from_dict, load_config, save_config, to_dict
from tfpipe.config.schemas import (
    WIKITEXT_HEADING_REGEX,
    WIKITEXT_TITLE_REGEX,
    AugmentConfig,
    CleaningConfig,
    Config,
    ModelConfig,
    PipelineConfig,
    PretrainingConfig,
    ReaderConfig,
    SpacyConfig,
    TokenizerConfig,
    TrainingConfig,
    VocabConfig,
)

__all__ = [
    "ConfigError", "apply_overrides", "from_dict", "load_config", "save_config", "to_dict", "Config",
    "ReaderConfig", "CleaningConfig", "SpacyConfig", "TokenizerConfig", "VocabConfig", "PretrainingConfig",
    "PipelineConfig", "AugmentConfig", "ModelConfig", "TrainingConfig",
    "WIKITEXT_TITLE_REGEX", "WIKITEXT_HEADING_REGEX",
]
