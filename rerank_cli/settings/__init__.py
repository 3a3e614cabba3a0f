"""Every setting: its schema, its resolution (option → environment → config file → profile →
default), and the config file."""
