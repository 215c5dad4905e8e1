"""Closed-form results derived from SDE objects: stationary laws, scaling rules, SignSGD phases."""
