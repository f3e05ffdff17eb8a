"""Step one of the flow: engines that fetch Kafka records in batches and hand them to the Ingestor
(aiokafka getmany, or Faust agents), with what they share: the apply pipeline, the log-end and
lag watches, and skipping unreadable batches.
"""
