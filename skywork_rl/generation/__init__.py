"""Generation backends (transformers, vLLM) behind one protocol, for everything outside the GRPO trainer."""
