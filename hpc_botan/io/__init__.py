"""File formats: exactly one module per format, the only code that reads or writes it."""
