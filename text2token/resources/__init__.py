"""Data shipped with the package: the default training corpus and the offline evaluation suite."""
