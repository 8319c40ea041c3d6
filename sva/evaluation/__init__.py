"""sva/evaluation"""
