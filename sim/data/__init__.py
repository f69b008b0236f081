"""Shipped default data: stages and values."""
