"""Label ids the data stage gives positions the loss must skip."""

IGNORE_INDEX = -100  # label id of positions the loss skips (non-first sub-tokens, specials, padding)
