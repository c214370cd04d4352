"""Jinja prompt templates, one per augmentation task; installed as package data."""
