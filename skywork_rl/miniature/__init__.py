"""The miniature: synthetic visual problems, tiny real checkpoints built from config, held-out accuracy."""
