"""steward: an autonomous on-node finite-state-machine agent runtime."""

__version__ = "0.1.0"
