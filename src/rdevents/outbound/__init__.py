"""Outbound work: what leaves rdevents after a commit, never inside a request."""
