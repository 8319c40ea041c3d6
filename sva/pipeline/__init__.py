"""sva/pipeline"""
