"""mlgate: the command line and the typed configuration root."""
