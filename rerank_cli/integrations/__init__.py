"""Optional integrations with other systems, each behind an extra of its own."""
