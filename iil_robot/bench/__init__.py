"""Benchmarks behind ``iil-robot bench …``; each prints one JSON object."""
