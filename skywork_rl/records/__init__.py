"""What a run leaves for a later run to trust: files written atomically, and each stage's fingerprints."""

# transformers' `TRAINER_STATE_NAME`, written last into a checkpoint: what resume and checkpoint
# selection trust a checkpoint by (kept here: importing transformers.trainer to read it costs
# seconds, and planning a pipeline loads the stages).
TRAINER_STATE_FILE = "trainer_state.json"
