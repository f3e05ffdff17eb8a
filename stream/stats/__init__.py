"""Pure statistics for A/B decisions: distributions, two-proportion comparisons, SRM. No I/O."""
