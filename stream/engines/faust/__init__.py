"""The Faust engine (``UPSELL_ENGINE=faust``): the counted topics through Faust agents into the
same Ingestor.

- ``agents.py``: :class:`FaustCounting`, the counting agents, their claims on assignment and
  their checks every second;
- ``claims.py``: the takeover: Faust reads an owned partition from the Redis checkpoint only;
- ``repair.py``: Redis that went back in time, read again beside Faust;
- ``unreadable.py``: batches no client can read, dead-lettered and skipped;
- ``tuning.py``: contained adjustments of Faust internals (a quiet Monitor, its high watermark).
"""
