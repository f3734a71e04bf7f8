"""The guarantees of issue 6, each tested on every backend: one module per guarantee."""
