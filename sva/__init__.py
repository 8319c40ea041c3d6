"""SVA workbench: sparse black-box video attacks with reinforcement learning."""
__version__ = "0.1.0"
