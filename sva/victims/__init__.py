"""sva/victims"""
