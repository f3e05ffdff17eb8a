"""Step one of the flow: engines that fetch Kafka records in batches and hand them to the Ingestor.

Each engine is a package that holds it whole: :mod:`stream.engines.batch` (aiokafka ``getmany``,
the default) and :mod:`stream.engines.faust` (Faust agents). Neither imports the other
(import-linter checks it). Beside them, what both use: the lag watch (``lag_watch.py``), the
log-end watch that notices a restarted log (``log_end_watch.py``) and finding and skipping
batches no client can read (``unreadable_batches.py``).
"""
