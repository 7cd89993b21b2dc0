"""Handling units (处置单位): the tree of bureaus, street offices and companies."""
