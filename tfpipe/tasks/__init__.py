"""The built-in tasks, one module each; importing this package registers them (`tfpipe.config.tasks`).

`base.Task` is the contract a task fulfils; `sequence.SequenceTask` is what the text-in, one-output tasks share.
"""

# Imported in this order, they register in it: the order `--help` and error messages list them in.
from tfpipe.tasks import classification, regression, token_classification  # noqa: F401, I001
from tfpipe.tasks import question_answering  # noqa: F401, E402
