"""Step two of the flow: a partition's raw records to one exactly-once apply."""
