"""The batch engine (``UPSELL_ENGINE=batch``, the default): aiokafka ``getmany`` batches of the
counted topics into the Ingestor, one atomic apply per partition batch.

- ``loop.py``: :class:`BatchEngine`, the consumer's loop and its rebalance listener;
- ``pipeline.py``: applies kept in flight while the next round is fetched and decoded;
- ``positions.py``: where each partition reads next, and every seek away from the next fetch;
- ``offset_commits.py``: offsets committed to Kafka, for lag visibility only.
"""
