"""The pipeline runner: `skywork-rl run` plans a pipeline, decides each stage's fate and launches it."""
