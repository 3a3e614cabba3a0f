"""What each command does between parsing and printing: source → session → writer."""
