"""sva/utils"""
