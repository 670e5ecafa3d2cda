"""The cache tiers: keys (one scheme), and the get_or_load seam every read goes through."""
