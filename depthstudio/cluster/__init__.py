"""Running batches past one machine (Ray). Nothing here imports Ray until a batch asks for it."""
