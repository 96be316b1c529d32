"""Files mlpcli writes and reads: atomic writes, the safe .npz reader, checkpoints and their metadata."""
