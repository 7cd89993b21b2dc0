"""Administrative areas (district, street, community), unit grids, duty grids, and point location."""
