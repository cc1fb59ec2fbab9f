"""Benchmarks of narration against the libraries a user would pick instead (`make bench`)."""
