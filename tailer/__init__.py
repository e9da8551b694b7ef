"""oper-tailer: follow legacy application logs and report user operations to the OperReport API."""

__version__ = "0.1.0"
