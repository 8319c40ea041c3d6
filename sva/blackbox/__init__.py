"""sva/blackbox"""
