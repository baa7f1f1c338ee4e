"""Trainers: small loops over algos + backends, on accelerate."""
