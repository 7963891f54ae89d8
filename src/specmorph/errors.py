"""The one exception type for bad input: it names the file, row or column and what was expected."""


class InputError(ValueError):
    """Input data (a file, a row, a column) is missing or not in the expected format."""


class NoDataError(InputError):
    """A readable image without a single finite pixel (all NaN or inf): nothing to classify or measure."""
