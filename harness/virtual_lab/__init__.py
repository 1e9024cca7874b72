"""virtual_lab."""
