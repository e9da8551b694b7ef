"""The chaos harness: ``python3 -m benchmarks.chaos [--kills N] [--scenario NAME]... [--quick] [--seed S]``.

Black-box: it runs ``tailer run`` and ``tailer replay`` as subprocesses through the CLI, against the
project's reference receiver (``EmbeddedReceiver``, with its fault injection) on 127.0.0.1, while an
application writer logs operations with a ground truth (a unique id per operation), and kills, rotates,
refuses, resets, delays and fills the disk under them. It prints one row per scenario: expected, received,
lost, resent, per-crash resends against the bound measured from the checkpoint the killed process left,
stored duplicates, and what copytruncate made unrecoverable (counted by scanning the files). Exit status 1
if any row failed (a loss, a resend over its bound, an unexpected exit code or a traceback).
"""
