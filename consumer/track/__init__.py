"""Piece tracking: scans in, each piece's status and alerts out (``ivmtr-stream track``).

``status`` folds scans into a piece's status and ``alerts`` applies the rules to it, both
pure over plain data; ``scans`` reads scan events off their topics; ``store`` holds the
statuses of the partitions an instance owns; ``tracker`` is the Kafka edge: a consumer
group, one transactional producer per partition, state restored from the status topic.
"""
