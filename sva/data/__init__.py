"""Datasets: downloads, safe archive extraction, split files, real dataset adapters."""
