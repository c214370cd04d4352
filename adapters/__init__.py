"""Adapters that wrap embedding-based RecBole models with llmaug features and losses."""
