"""The verbs: push, pull, verify, inspect, copy. Each is a thin layer over the copy engine."""
