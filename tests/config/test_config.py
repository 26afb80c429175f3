"""tfpipe.config: dataclass configs from dicts and YAML files, `section.key=value` overrides, validation, saving."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from tfpipe.config import (
    Config,
    ConfigError,
    PipelineConfig,
    PretrainingConfig,
    ReaderConfig,
    apply_overrides,
    from_dict,
    load_config,
    save_config,
    to_dict,
)


def write_yaml(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# --- from_dict / load_config -------------------------------------------------------------------------------


def test_defaults_without_a_file():
    config = load_config(Config)
    assert config == Config()
    assert config.task == "classification"
    assert config.pretraining.num_shards == 4
    assert config.pipeline.bucket_boundaries == []


def test_load_config_reads_nested_sections_from_yaml(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", """
task: token-classification
reader:
  format: conll
  tag_column: 3
  on_error: skip
cleaning:
  unicode_form: NFKC
  dedupe: false
pretraining:
  masked_lm_prob: 0.2
  num_shards: 2
pipeline:
  max_seq_length: 64
  bucket_boundaries: [16, 32, 64]
""")
    config = load_config(Config, path)
    assert config.task == "token-classification"
    assert config.reader.format == "conll"
    assert config.reader.tag_column == 3
    assert config.reader.on_error == "skip"
    assert config.cleaning.unicode_form == "NFKC"
    assert config.cleaning.dedupe is False
    assert config.pretraining.masked_lm_prob == pytest.approx(0.2)
    assert config.pretraining.num_shards == 2
    assert config.pipeline.bucket_boundaries == [16, 32, 64]
    # Keys not in the file keep their defaults, also inside a section the file names.
    assert config.reader.word_column == 0
    assert config.pretraining.max_seq_length == 128
    assert config.spacy == Config().spacy


def test_from_dict_builds_nested_dataclasses():
    config = from_dict(Config, {"reader": {"text_column": "sentence"}, "vocab": {"vocab_size": 500}})
    assert isinstance(config.reader, ReaderConfig)
    assert config.reader.text_column == "sentence"
    assert config.vocab.vocab_size == 500


def test_from_dict_coerces_numeric_strings_and_ints():
    config = from_dict(Config, {"pretraining": {"seed": "7", "masked_lm_prob": 1}, "cleaning": {"dedupe": "no"}})
    assert config.pretraining.seed == 7
    assert isinstance(config.pretraining.masked_lm_prob, float) and config.pretraining.masked_lm_prob == 1.0
    assert config.cleaning.dedupe is False


def test_empty_yaml_file_gives_defaults(tmp_path):
    assert load_config(Config, write_yaml(tmp_path / "empty.yaml", "")) == Config()


def test_unknown_top_level_key_is_named_with_the_allowed_keys():
    with pytest.raises(ConfigError) as info:
        from_dict(Config, {"pretrainning": {}})
    message = str(info.value)
    assert "'pretrainning'" in message
    for allowed in ("task", "reader", "cleaning", "spacy", "tokenizer", "vocab", "pretraining", "pipeline",
                    "augment"):
        assert allowed in message


def test_unknown_nested_key_is_named_with_its_section(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", "pretraining:\n  mask_prob: 0.2\n")
    with pytest.raises(ConfigError) as info:
        load_config(Config, path)
    message = str(info.value)
    assert "'pretraining.mask_prob'" in message
    allowed = message.split("allowed:", 1)[1]
    assert [k.strip() for k in allowed.split(",")] == sorted(f.name for f in dataclasses.fields(PretrainingConfig))


@pytest.mark.parametrize(
    "data, key, expected",
    [
        ({"pretraining": {"num_shards": 2.5}}, "pretraining.num_shards", "integer"),
        ({"pretraining": {"num_shards": "many"}}, "pretraining.num_shards", "integer"),
        ({"pretraining": {"num_shards": True}}, "pretraining.num_shards", "integer"),
        ({"pretraining": {"num_shards": [2]}}, "pretraining.num_shards", "integer"),
        ({"pretraining": {"masked_lm_prob": "high"}}, "pretraining.masked_lm_prob", "number"),
        ({"pretraining": {"masked_lm_prob": True}}, "pretraining.masked_lm_prob", "number"),
        ({"pretraining": {"masked_lm_prob": [0.1]}}, "pretraining.masked_lm_prob", "number"),
        ({"cleaning": {"dedupe": "maybe"}}, "cleaning.dedupe", "true or false"),
        ({"cleaning": {"dedupe": 1}}, "cleaning.dedupe", "true or false"),
        ({"pipeline": {"bucket_boundaries": 16}}, "pipeline.bucket_boundaries", "list"),
        ({"pipeline": {"bucket_boundaries": [16, "x"]}}, "pipeline.bucket_boundaries[1]", "integer"),
        ({"reader": {"text_column": ["a"]}}, "reader.text_column", "string"),
        ({"reader": {"text_column": True}}, "reader.text_column", "string"),
        ({"pipeline": [1, 2]}, "pipeline", "mapping"),
    ],
)
def test_wrong_types_name_the_key(data, key, expected):
    with pytest.raises(ConfigError) as info:
        from_dict(Config, data)
    assert str(info.value).startswith(f"{key}: expected")
    assert expected in str(info.value)


def test_wrong_type_in_yaml_file_names_the_key(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", "spacy:\n  batch_size: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"^spacy\.batch_size: expected an integer"):
        load_config(Config, path)


def test_choice_error_lists_allowed_values():
    with pytest.raises(ConfigError) as info:
        from_dict(Config, {"reader": {"format": "xml"}})
    message = str(info.value)
    assert message.startswith("reader.format: 'xml' is not allowed")
    assert "allowed values: auto, text, tsv, csv, jsonl, conll, spans" in message

    with pytest.raises(ConfigError, match="allowed values: classification, regression, token-classification"):
        from_dict(Config, {"task": "ner"})
    with pytest.raises(ConfigError, match="cleaning.unicode_form: 'NFD' is not allowed; allowed values: NFC, NFKC, "
                                          "none"):
        from_dict(Config, {"cleaning": {"unicode_form": "NFD"}})


@pytest.mark.parametrize(
    "data, message",
    [
        ({"vocab": {"vocab_size": 8}}, "vocab.vocab_size: 8 is below the minimum 16"),
        ({"pretraining": {"masked_lm_prob": 1.5}}, "pretraining.masked_lm_prob: 1.5 is above the maximum 1.0"),
        ({"pretraining": {"masked_lm_prob": -0.1}}, "pretraining.masked_lm_prob: -0.1 is below the minimum 0.0"),
        ({"pretraining": {"max_seq_length": 4}}, "pretraining.max_seq_length: 4 is below the minimum 8"),
        ({"pipeline": {"shuffle_buffer": -1}}, "pipeline.shuffle_buffer: -1 is below the minimum 0"),
        ({"augment": {"p_rd": 2}}, "augment.p_rd: 2.0 is above the maximum 1.0"),
    ],
)
def test_bounds_errors(data, message):
    with pytest.raises(ConfigError) as info:
        from_dict(Config, data)
    assert str(info.value) == message


def test_bounds_are_inclusive():
    config = from_dict(Config, {"vocab": {"vocab_size": 16}, "pretraining": {"masked_lm_prob": 1.0,
                                                                            "short_seq_prob": 0.0}})
    assert config.vocab.vocab_size == 16
    assert config.pretraining.masked_lm_prob == 1.0
    assert config.pretraining.short_seq_prob == 0.0


def test_nan_is_outside_the_bounds():
    with pytest.raises(ConfigError, match="pretraining.masked_lm_prob"):
        from_dict(Config, {"pretraining": {"masked_lm_prob": "nan"}})


# --- PipelineConfig.check ----------------------------------------------------------------------------------


def test_bucket_boundaries_valid():
    config = from_dict(PipelineConfig, {"max_seq_length": 64, "bucket_boundaries": [16, 32, 64]})
    assert config.bucket_boundaries == [16, 32, 64]
    config.check()  # no error


@pytest.mark.parametrize("bounds", [[32, 16], [16, 16], [0, 16], [-8, 16]])
def test_bucket_boundaries_must_increase_and_be_positive(bounds):
    with pytest.raises(ConfigError, match=r"pipeline\.bucket_boundaries: .* must be increasing positive integers"):
        from_dict(Config, {"pipeline": {"bucket_boundaries": bounds}})


def test_bucket_boundaries_cannot_exceed_max_seq_length():
    with pytest.raises(ConfigError, match=r"pipeline\.bucket_boundaries: 256 is above pipeline\.max_seq_length=128"):
        from_dict(Config, {"pipeline": {"bucket_boundaries": [16, 256]}})
    # The same check runs directly on an instance changed after construction.
    config = PipelineConfig(max_seq_length=64)
    config.bucket_boundaries = [32, 128]
    with pytest.raises(ConfigError, match="above pipeline.max_seq_length=64"):
        config.check()


def test_bucket_boundaries_from_comma_string():
    assert from_dict(PipelineConfig, {"bucket_boundaries": "16, 32"}).bucket_boundaries == [16, 32]


# --- apply_overrides ---------------------------------------------------------------------------------------


def test_overrides_parse_ints_floats_bools_lists_strings_and_nulls():
    base = from_dict(Config, {"reader": {"label_column": "label"}})
    config = apply_overrides(base, [
        "pretraining.num_shards=3",
        "pretraining.masked_lm_prob=0.25",
        "cleaning.dedupe=false",
        "pretraining.whole_word_mask=true",
        "pipeline.bucket_boundaries=[16,32]",
        "reader.text_column=sentence",
        "reader.label_column=null",
        "task=regression",
    ])
    assert config.pretraining.num_shards == 3 and isinstance(config.pretraining.num_shards, int)
    assert config.pretraining.masked_lm_prob == pytest.approx(0.25)
    assert config.cleaning.dedupe is False
    assert config.pretraining.whole_word_mask is True
    assert config.pipeline.bucket_boundaries == [16, 32]
    assert config.reader.text_column == "sentence"
    assert config.reader.label_column is None
    assert config.task == "regression"
    # The input object is not modified.
    assert base.pretraining.num_shards == 4 and base.reader.label_column == "label"


def test_override_value_may_contain_equals_signs_and_numbers_become_strings():
    config = apply_overrides(Config(), ["reader.drop_regex=^a=b$", "reader.text_column=2"])
    assert config.reader.drop_regex == "^a=b$"
    assert config.reader.text_column == "2"


def test_override_with_an_empty_value_gives_an_empty_string():
    assert apply_overrides(Config(), ["reader.text_column="]).reader.text_column == ""


def test_later_override_wins():
    config = apply_overrides(Config(), ["pretraining.seed=1", "pretraining.seed=2"])
    assert config.pretraining.seed == 2


def test_no_overrides_returns_an_equal_config():
    config = from_dict(Config, {"vocab": {"vocab_size": 100}})
    assert apply_overrides(config, None) == config
    assert apply_overrides(config, []) == config


def test_override_unknown_key_names_it_and_the_allowed_keys():
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), ["pretraining.shards=3"])
    message = str(info.value)
    assert "unknown key 'pretraining.shards'" in message
    assert "num_shards" in message and "masked_lm_prob" in message


def test_override_unknown_section_names_it_and_lists_sections():
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), ["trainer.epochs=3"])
    message = str(info.value)
    assert "unknown section 'trainer'" in message
    sections = "augment, cleaning, model, pipeline, pretraining, reader, spacy, tokenizer, training, vocab"
    assert f"sections: {sections}" in message


def test_override_into_a_scalar_is_an_unknown_section():
    with pytest.raises(ConfigError, match="unknown section 'task'"):
        apply_overrides(Config(), ["task.name=x"])


def test_malformed_override_without_equals():
    with pytest.raises(ConfigError, match=r"override 'pretraining\.num_shards' must look like section\.key=value"):
        apply_overrides(Config(), ["pretraining.num_shards"])


def test_override_values_are_validated():
    with pytest.raises(ConfigError, match=r"^pretraining\.num_shards: 0 is below the minimum 1"):
        apply_overrides(Config(), ["pretraining.num_shards=0"])
    with pytest.raises(ConfigError, match=r"^pretraining\.num_shards: expected an integer, got 2\.5"):
        apply_overrides(Config(), ["pretraining.num_shards=2.5"])
    with pytest.raises(ConfigError, match=r"^reader\.on_error: 'ignore' is not allowed; allowed values: raise, skip"):
        apply_overrides(Config(), ["reader.on_error=ignore"])
    with pytest.raises(ConfigError, match="must be increasing"):
        apply_overrides(Config(), ["pipeline.bucket_boundaries=[32,16]"])


def test_load_config_applies_overrides_after_the_file(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", "pretraining:\n  num_shards: 2\n  seed: 9\n")
    config = load_config(Config, path, ["pretraining.num_shards=5"])
    assert config.pretraining.num_shards == 5
    assert config.pretraining.seed == 9


# --- files: save, round trip, errors -----------------------------------------------------------------------


def test_save_config_round_trips(tmp_path):
    config = apply_overrides(Config(), [
        "task=token-classification", "reader.text_column=sentence", "reader.on_error=skip",
        "cleaning.unicode_form=NFKC", "pretraining.masked_lm_prob=0.3", "pipeline.max_seq_length=64",
        "pipeline.bucket_boundaries=[16,32]", "tokenizer.vocab=/some/vocab.txt", "augment.seed=3",
    ])
    path = save_config(config, tmp_path / "out" / "nested")
    assert path == tmp_path / "out" / "nested" / "config.yaml"
    assert path.is_file()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(data) == [f.name for f in dataclasses.fields(Config)]  # sections in declaration order
    assert data["pipeline"]["bucket_boundaries"] == [16, 32]
    loaded = load_config(Config, path)
    assert loaded == config
    assert to_dict(loaded) == to_dict(config)


def test_save_config_overwrites(tmp_path):
    save_config(apply_overrides(Config(), ["pretraining.seed=1"]), tmp_path)
    save_config(apply_overrides(Config(), ["pretraining.seed=2"]), tmp_path)
    assert load_config(Config, tmp_path / "config.yaml").pretraining.seed == 2


def test_missing_config_file_names_the_path(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(Config, path)
    assert str(info.value) == f"{path}: config file not found"


def test_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Config, tmp_path)


def test_invalid_yaml_names_the_path(tmp_path):
    path = write_yaml(tmp_path / "bad.yaml", "reader: [unclosed\n  format: tsv\n")
    with pytest.raises(ConfigError) as info:
        load_config(Config, path)
    assert str(info.value).startswith(f"{path}: not valid YAML")


def test_top_level_must_be_a_mapping(tmp_path):
    path = write_yaml(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError) as info:
        load_config(Config, path)
    assert str(info.value) == f"{path}: the top level must be a mapping of sections"


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)
