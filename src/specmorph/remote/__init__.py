"""The only code that touches the network: resumable, verified HTTP downloads into a cache directory."""

from specmorph.remote.http import BadContent, Fetched, NotFound, RemoteError, RetryPolicy, fetch

__all__ = ["BadContent", "Fetched", "NotFound", "RemoteError", "RetryPolicy", "fetch"]
