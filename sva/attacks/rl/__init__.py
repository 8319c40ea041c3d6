"""sva/attacks/rl"""
