"""What a run leaves for a later run to trust: files written atomically, and each stage's fingerprints."""
