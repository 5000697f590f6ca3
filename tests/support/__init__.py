"""Helpers shared by more than one test folder, one module each (ports and servers' readiness, images)."""
